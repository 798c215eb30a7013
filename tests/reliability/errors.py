"""Checking what the command line tells the user when it refuses."""
from __future__ import annotations

from lotteryir.cli import main


def one_error_line(capsys, argv: list[str], *expect: str) -> str:
    """Run the CLI in-process: non-zero exit, exactly one stderr line, containing every ``expect``."""
    code = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code != 0, captured
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    for piece in expect:
        assert piece in lines[0], lines[0]
    return lines[0]


def listing(directory) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time, to prove nothing changed."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}
