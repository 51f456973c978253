"""Our exceptions and exit statuses. Every error the CLI expects is one of these, with a one-line message."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The exit statuses of every command (README, "Exit statuses")."""

    OK = 0  # healthy / fixed and verified, or nothing to fix
    PROBLEMS = 1  # problems found / fix failed verification and was rolled back
    USAGE = 2  # usage error (typer's own)
    CANNOT_CHECK = 3  # could not check at all / refused before changing anything
    ROLLBACK_FAILED = 4  # fix only: rollback failed
    INTERRUPTED = 130


class MultusError(Exception):
    """Base: an expected failure with a message fit for one line."""

    status = ExitStatus.CANNOT_CHECK


class InputError(MultusError):
    """Bad input: unreadable dump, invalid JSON, unknown node."""


class NotFoundError(MultusError):
    """Multus (or a node) is not where the user pointed us."""


class Refused(MultusError):
    """fix refused before changing anything."""


class ClusterError(MultusError):
    """The API server refused, failed or could not be reached."""


class NodeAccessError(MultusError):
    """One node's files could not be read (exec refused, helper pod rejected or stuck)."""
