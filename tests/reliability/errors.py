"""Checking what the command line tells the user when it refuses."""

from __future__ import annotations

from ..test_cli import _one_error_line


def one_error_line(capsys, argv: list[str], *expect: str) -> str:
    """Run the CLI in-process: non-zero exit, exactly one stderr line, containing every ``expect``."""
    line = _one_error_line(capsys, argv, expect[0] if expect else "")
    for piece in expect[1:]:
        assert piece in line, line
    return line


def listing(directory) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time, to prove nothing changed."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
