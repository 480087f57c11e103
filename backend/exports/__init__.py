"""Exports: decided, audited, watermarked, encrypted files; and the per-user bulk-read budget
that keeps REST paging and GraphQL from being a side door around the export rules."""
