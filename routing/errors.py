"""Exception family of the routing package.

Every error raised by :mod:`routing` derives from :class:`RoutingError`, so callers at the edges
(HTTP handlers, bot actions) can translate them in one place.
"""

from __future__ import annotations


class RoutingError(Exception):
    """Base class of every routing error."""


class DataError(RoutingError):
    """Invalid reference or configuration data, with the file and line at fault."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(f"{where}{message}")


class UnknownReportTypeError(RoutingError):
    """A report type that is not one of :data:`routing.REPORT_TYPES`."""


class UnknownCommuneError(RoutingError):
    """An INSEE code that is neither a current commune nor a former/delegated code."""
