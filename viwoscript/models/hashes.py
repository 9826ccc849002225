"""A1111's model-file hashes, computed once per file and cached by path, size and modification time.

The names A1111, Civitai and other tools write into image metadata and look models up by:

- ``Model hash`` of a checkpoint: the first 10 hex digits of the sha256 of the whole file
  (:attr:`FileHashes.model`);
- ``Lora hashes``: the "addnet" hash of a ``.safetensors`` LoRA, the sha256 of the bytes after the
  safetensors header, first 12 hex digits (:attr:`FileHashes.addnet_short`);
- ``TI hashes`` (textual-inversion embeddings) and A1111's ``shorthash``: the whole file's sha256, first 12
  hex digits (:attr:`FileHashes.short`);
- the legacy ``Model hash`` of A1111 before 2023 (8 hex digits: sha256 of 64 KiB at offset 1 MiB,
  :attr:`FileHashes.legacy`), found in old images' ``parameters``.

Hashing a 6 GB checkpoint takes seconds, so :class:`HashCache` keeps the results in one small JSON file
(``model-hashes.json`` in ``[models] cache_dir``, else the user cache folder), keyed by the file's
absolute path and valid while its size and modification time are unchanged. The cache is written
atomically (a temporary file then ``os.replace``); a damaged or foreign cache file is ignored and
rebuilt. Importing this module is cheap (hashlib and json only).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_FILE = "model-hashes.json"
_VERSION = 1
_BLOCK = 1 << 20
#: Largest safetensors header accepted (the format itself caps it at 100 MB).
_MAX_HEADER = 100_000_000


@dataclass(frozen=True)
class FileHashes:
    """The full hex digests of one file; the short forms A1111 writes are properties."""

    sha256: str
    #: sha256 of the bytes after the safetensors header ("addnet" hash); ``None`` for other files.
    addnet: str | None = None
    #: A1111's old 8-digit model hash (sha256 of 64 KiB at offset 1 MiB).
    legacy: str | None = None

    @property
    def model(self) -> str:
        """A1111's ``Model hash`` (sha256, 10 hex digits)."""
        return self.sha256[:10]

    @property
    def short(self) -> str:
        """A1111's ``shorthash`` and ``TI hashes`` value (sha256, 12 hex digits)."""
        return self.sha256[:12]

    @property
    def addnet_short(self) -> str | None:
        """The ``Lora hashes`` value (addnet hash, 12 hex digits)."""
        return self.addnet[:12] if self.addnet else None

    def matches(self, text: str) -> bool:
        """Whether ``text`` (a hash from metadata, any case, any prefix length ≥ 8) names this file."""
        t = text.strip().lower()
        if len(t) < 8 or any(c not in "0123456789abcdef" for c in t):
            return False
        return (self.sha256.startswith(t) or bool(self.addnet and self.addnet.startswith(t))
                or (len(t) == 8 and t == self.legacy))

    def to_dict(self) -> dict:
        out = {"sha256": self.sha256, "model_hash": self.model, "short_hash": self.short}
        if self.addnet:
            out.update(addnet=self.addnet, addnet_hash=self.addnet_short)
        if self.legacy:
            out["legacy_hash"] = self.legacy
        return out


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("viwoscript", appauthor=False))


def cache_file_for(config: Any = None) -> Path:
    """The hash cache file of a :class:`~viwoscript.models.config.ModelConfig` (``cache_dir``), else the
    user cache folder's."""
    folder = getattr(config, "cache_dir", None)
    return (Path(os.path.expanduser(folder)) if folder else default_cache_dir()) / CACHE_FILE


def safetensors_header_size(path: str | os.PathLike) -> int | None:
    """Bytes before the tensor data of a safetensors file (8 + header length), or ``None`` when the file
    is not one (too short, or a header length that cannot be)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    if len(head) < 9 or head[8:9] != b"{":
        return None
    n = int.from_bytes(head[:8], "little")
    if n > _MAX_HEADER or 8 + n > size:
        return None
    return 8 + n


def compute(path: str | os.PathLike, *, addnet: bool | None = None,
            progress: Callable[[int, int], None] | None = None) -> FileHashes:
    """Hash ``path`` in one pass: the whole file's sha256, the addnet hash (``addnet``: ``None`` = for
    ``.safetensors`` files) and the legacy hash. ``progress(done_bytes, total_bytes)`` is called per MiB."""
    path = Path(path)
    offset = safetensors_header_size(path) if addnet or (addnet is None and path.suffix == ".safetensors") else None
    whole, after = hashlib.sha256(), (hashlib.sha256() if offset is not None else None)
    legacy = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        while chunk := f.read(_BLOCK):
            whole.update(chunk)
            if after is not None:
                start = max(0, offset - done)
                if start < len(chunk):
                    after.update(chunk[start:] if start else chunk)
            lo, hi = max(0, 0x100000 - done), min(len(chunk), 0x110000 - done)
            if lo < hi:
                legacy.update(chunk[lo:hi])
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return FileHashes(whole.hexdigest(), after.hexdigest() if after is not None else None,
                      legacy.hexdigest()[:8] if total > 0x100000 else None)


class HashCache:
    """Hashes of model files, cached in one JSON file (see the module docstring). Thread-safe; several
    processes may share the file (the last writer wins, and every entry is checked against the file's
    size and mtime before use, so a stale entry is never trusted)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_cache_dir() / CACHE_FILE
        self._lock = threading.Lock()
        self._entries: dict[str, dict] | None = None

    @classmethod
    def for_config(cls, config: Any = None) -> HashCache:
        return cls(cache_file_for(config))

    # --- reading ---------------------------------------------------------------------------------
    def _load(self) -> dict[str, dict]:
        if self._entries is None:
            self._entries = _read(self.path)
        return self._entries

    def cached(self, path: str | os.PathLike, *, addnet: bool = False) -> FileHashes | None:
        """The cached hashes of ``path`` when still valid (same size and mtime), else ``None``; never
        reads the file itself. ``addnet``: only an entry that holds the addnet hash counts."""
        key, stamp = _stamp(path)
        if stamp is None:
            return None
        with self._lock:
            entry = self._load().get(key)
        if not entry or entry.get("size") != stamp[0] or entry.get("mtime_ns") != stamp[1]:
            return None
        if addnet and not entry.get("addnet"):
            return None
        return FileHashes(entry["sha256"], entry.get("addnet"), entry.get("legacy"))

    def hashes(self, path: str | os.PathLike, *, addnet: bool | None = None,
               progress: Callable[[int, int], None] | None = None) -> FileHashes:
        """The hashes of ``path``: from the cache, else computed (one pass over the file) and saved.
        ``addnet``: ``None`` computes it for ``.safetensors`` files; ``True`` requires it (LoRAs)."""
        hit = self.cached(path, addnet=bool(addnet))
        if hit is not None:
            return hit
        key, stamp = _stamp(path)
        if stamp is None:
            raise FileNotFoundError(f"no such file: {path}")
        found = compute(path, addnet=addnet, progress=progress)
        if _stamp(path)[1] != stamp:  # changed while being read: do not cache what may be a mix
            return found
        entry = {"size": stamp[0], "mtime_ns": stamp[1], "sha256": found.sha256}
        if found.addnet:
            entry["addnet"] = found.addnet
        if found.legacy:
            entry["legacy"] = found.legacy
        with self._lock:
            entries = _read(self.path)  # what other processes added meanwhile
            entries.update(self._load())
            entries[key] = entry
            self._entries = entries
            self._save(entries)
        return found

    def _save(self, entries: dict[str, dict]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".model-hashes-", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"version": _VERSION, "files": entries}, f, indent=0, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            pass  # a read-only cache folder: hashes still work, they are just computed again next time


def _stamp(path: str | os.PathLike) -> tuple[str, tuple[int, int] | None]:
    p = Path(path)
    try:
        key = str(p.resolve())
        st = p.stat()
    except OSError:
        return str(p), None
    if not p.is_file():
        return key, None
    return key, (st.st_size, st.st_mtime_ns)


def _read(path: Path) -> dict[str, dict]:
    """The entries of a cache file; a missing, damaged or foreign file reads as empty."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _VERSION or not isinstance(data.get("files"), dict):
        return {}
    out = {}
    for k, v in data["files"].items():
        if (isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("sha256"), str)
                and isinstance(v.get("size"), int) and isinstance(v.get("mtime_ns"), int)):
            out[k] = v
    return out


__all__ = ["CACHE_FILE", "FileHashes", "HashCache", "cache_file_for", "compute", "safetensors_header_size"]
