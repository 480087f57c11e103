"""The one error type of backups: a clear one-line reason, and an exit status for the CLI."""

from __future__ import annotations

from backend.errors import CaravanError


class BackupError(CaravanError):
    status = 500
    code = "backup_failed"
    title = "Backup failed"


class BackupRefused(BackupError):
    """The archive or its manifest failed a check: nothing was written."""

    code = "backup_refused"
    title = "Backup refused"


class BackupNotFound(BackupError):
    status = 404
    code = "backup_not_found"
    title = "No such backup"
