"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

Every file viwoscript writes (images, store blobs, template exports, canvas state files) goes through
:func:`atomic_write`. The temporary file is created with mode ``0o666`` so the kernel applies the process
umask (and a folder's default ACL) exactly as for any other tool's files — ``tempfile.mkstemp`` would make it
``0600`` and the renamed file would stay private.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: Mode asked for new files; the umask takes its bits away (0o644 under the usual umask 022).
FILE_MODE = 0o666


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name} in {folder}")


def atomic_write(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The folder is created if needed; the file gets the mode any new file gets (the umask applies)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(p.parent, p.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p
