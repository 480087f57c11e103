"""BackupService: take, list, open (verify), drill, restore and prune backups. Each job in its
own module: take.py, catalog.py (ids, list, open), restoring.py, drill.py, pruning.py."""

from __future__ import annotations

from backend.backups.drill import BackupDrill
from backend.backups.pruning import BackupPruning
from backend.backups.take import BackupTaking


class BackupService(BackupTaking, BackupDrill, BackupPruning):
    """The backup service the CLI and the scheduler use: every job's methods on one object."""
