"""The error every run-directory problem raises, phrased for the user."""

from __future__ import annotations


class RunError(ValueError):
    """A problem with a run directory or its configuration, phrased for the user."""
