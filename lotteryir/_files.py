"""Atomic writes: every file lotteryir saves goes through a temporary file, fsync and rename.

Temporary files and folders are named ``.<name>.<random>.tmp`` beside their target, so a write
killed half way leaves only names that :func:`remove_leftovers` recognises and removes.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors.torch import save


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
TMP_SUFFIX = ".tmp"


class WriteError(OSError):
    """An operating-system error while writing (disk full, permission, read-only), naming the file."""

    def __init__(self, path: str | os.PathLike, error: OSError):
        super().__init__(error.errno, error.strerror or str(error), str(path))
        self.message = f"cannot write {path}: {error.strerror or error}"

    def __str__(self) -> str:
        return self.message


class OutputExistsError(FileExistsError):
    """A file that a no-overwrite write found in its place (perhaps written meanwhile by another process)."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(errno.EEXIST, "File exists", str(path))
        self.message = f"{path} exists; it was not replaced (pass --overwrite, overwrite=True in Python, to replace it)"

    def __str__(self) -> str:
        return self.message


# Filesystems without hard links (FAT, some network mounts) answer link() with one of these.
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def _place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path``; without ``overwrite``, only if ``path`` does not exist.

    Not check-then-rename: link() fails atomically when the name exists, so of two writers racing
    for one name exactly one gets it and the other's file is never put over it.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(path) from None
    except OSError as e:
        if e.errno not in _NO_LINKS:
            raise
        try:  # claim the name exclusively, then move the complete file over the claim
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_UMASK))
        except FileExistsError:
            raise OutputExistsError(path) from None
        os.replace(tmp, path)
        return
    tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *, overwrite: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    A reader (or a crash) sees either the old file or the complete new one, never a torn one.
    Without ``overwrite`` an existing ``path`` is never replaced, even one created by another
    process while this one wrote (OutputExistsError). OSErrors name ``path`` (WriteError).
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the permissions open() would
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _place(tmp, path, overwrite)
    except BaseException as e:
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # a leftover name that remove_leftovers() recognises
        if isinstance(e, OSError) and not isinstance(e, (WriteError, OutputExistsError)):
            raise WriteError(path, e) from e
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` atomically."""
    atomic_write(path, lambda p: p.write_text(text), overwrite=overwrite)


def unshared_cpu(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies fit for safetensors, which refuses tensors sharing storage (tied weights)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in tensors.items():
        t = value.detach().to("cpu").contiguous()
        if t.numel() and t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        out[key] = t
    return out


def atomic_save_safetensors(
    tensors: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
    *,
    overwrite: bool = True,
) -> None:
    """``safetensors.torch.save_file`` atomically (tied tensors are stored once per key)."""
    data = unshared_cpu(tensors)
    # Serialized here and written by Python, so a full disk is an OSError (named), not safetensors' own error.
    blob = save(data, metadata=dict(metadata) if metadata else None)
    atomic_write(path, lambda p: p.write_bytes(blob), overwrite=overwrite)


def temporary_dir(final: str | os.PathLike) -> Path:
    """A new empty folder beside ``final`` to fill and then rename over it (a leftover name if killed).

    It gets the permissions ``mkdir`` would give, not mkdtemp's 0700.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    return tmp


def is_leftover(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like an atomic write's temporary file or folder."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TMP_SUFFIX) and len(name) > len(TMP_SUFFIX) + 1


def remove_leftovers(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files and folders that killed atomic writes left under ``directory``.

    Only call this while no other process writes there (a run holds its lock). Returns what was removed.
    """
    removed: list[Path] = []
    for root, dirs, files in os.walk(directory):
        for name in [d for d in dirs if is_leftover(d)]:
            shutil.rmtree(Path(root) / name, ignore_errors=True)
            dirs.remove(name)
            removed.append(Path(root) / name)
        for name in files:
            if is_leftover(name):
                (Path(root) / name).unlink(missing_ok=True)
                removed.append(Path(root) / name)
    return removed
