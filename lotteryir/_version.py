"""The package's version, in one place (pyproject.toml reads it from here)."""

__version__ = "0.1.0.dev0"
"""The installed lotteryir version (PEP 440)."""
