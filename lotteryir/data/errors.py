"""The one exception type of lotteryir.data."""

from __future__ import annotations


class DataError(ValueError):
    """A problem with the user's data: a missing folder, an unreadable image, unmatched pairs.

    Messages name the path and say what was expected, so the CLI can show them as-is.
    """
