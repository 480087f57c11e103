"""Exports as a resource: request (decided, generated or queued for approval), read, approve,
deny, link, download. Each job in its own module: request.py, approval.py, download.py; the file
is written by produce.py, and rows.py holds the row lookups they share."""

from __future__ import annotations

from backend.exports.approval import ExportApprovals
from backend.exports.download import ExportDownloads
from backend.exports.request import ExportRequests


class ExportService(ExportRequests, ExportApprovals, ExportDownloads):
    """The export service the API and the CLI use: every job's methods on one object."""
