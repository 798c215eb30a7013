"""One writer per run directory: an OS file lock that dies with the process holding it.

``prune`` holds an exclusive lock on ``<run>/lock`` from before it looks at the directory until it
returns. The lock belongs to the open file, so a process killed in any way (SIGKILL included)
releases it, and no stale lock is ever left behind. The file also records who holds it (PID and
host), which is what a second writer is told. Readers (report, evaluate, export) never take it.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

LOCK_FILE = "lock"

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows: a byte-range lock on the first byte, also released when the process dies
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]


class RunLockedError(RuntimeError):
    """Another process is writing to the run directory."""

    def __init__(self, directory: Path, holder: str) -> None:
        self.directory, self.holder = directory, holder
        super().__init__(
            f"{directory} is being written by another lotteryir prune ({holder}); two writers would mix two "
            "runs. Wait for it to finish or stop it, or choose another --out"
        )


class RunLock:
    """An exclusive, non-blocking lock on a run directory."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.created = False  # whether acquire() made the lock file (a refused writer removes it again)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` naming the process that holds it."""
        if self._fd is not None:
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                self.created = True
            except FileExistsError:
                try:
                    fd = os.open(self.path, os.O_RDWR)
                except FileNotFoundError:  # its holder removed it in between: try again
                    continue
            if not _try_lock(fd):
                os.close(fd)
                raise RunLockedError(self.directory, self._holder())
            # A holder that gave up may have unlinked the file we opened: only the file at the path counts.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            _unlock(fd)
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd

    def release(self, remove: bool = False) -> None:
        """Give the lock up; ``remove`` also deletes the lock file first (while still holding it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if remove:
                try:
                    self.path.unlink(missing_ok=True)
                except OSError:  # Windows cannot delete an open file; an empty lock file is harmless
                    pass
            _unlock(fd)
        finally:
            os.close(fd)

    def _holder(self) -> str:
        # The holder writes its PID right after locking; give a writer that just won the race a moment.
        for _ in range(20):
            try:
                pid, _, host = self.path.read_text().strip().partition(" ")
            except OSError:
                pid, host = "", ""
            if pid:
                here = host in ("", socket.gethostname())
                where = "" if here else f" on host {host}"
                return f"PID {pid}{where}" + (" (this process)" if here and pid == str(os.getpid()) else "")
            time.sleep(0.05)
        return "PID unknown"

    def __del__(self) -> None:  # a forgotten lock must not outlive its owner object
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
