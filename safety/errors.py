"""Exception family of the safety package."""

from __future__ import annotations


class SafetyError(Exception):
    """Base class of every error raised by :mod:`safety`."""


class SafetyDataError(SafetyError):
    """A YAML data file of the safety package is missing, malformed or inconsistent."""
