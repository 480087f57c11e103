"""Encrypted backups: dump, encrypt, store, list, verify, restore, prune, schedule."""
