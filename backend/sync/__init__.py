"""Mobile delta sync: pull changes and tombstones since a cursor, push offline edits with
per-field conflict results, and the sync state of each device."""
