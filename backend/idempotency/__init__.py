"""Idempotency-Key: a retried POST returns the first answer instead of doing the work twice."""
