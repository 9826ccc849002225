"""File access for scripts: only under the Runtime's allowed roots.

A script path is resolved against each root in turn; ``..`` segments, absolute paths outside the roots
and symlinks that lead out of a root are refused with a clear error.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ScriptError


def resolve_under_roots(path: str, roots: list[Path], op: str, *, must_exist: bool = True) -> Path:
    """The real path of ``path`` inside one of ``roots``; a ScriptError otherwise."""
    if not isinstance(path, str) or not path:
        raise ScriptError(f"{op}: expected a file path")
    if "\x00" in path:
        raise ScriptError(f"{op}: invalid file path")
    if not roots:
        raise ScriptError(f"{op}: file access is not allowed in this runtime",
                          hint="the host must allow a folder (Runtime(roots=[...]) or `roots` in viwo.toml)")
    raw = Path(path)
    if ".." in raw.parts:
        raise ScriptError(f"{op}: '..' is not allowed in paths ({path})", hint="use a path inside the allowed folders")
    try:
        return _resolve(path, raw, roots, op, must_exist)
    except OSError as e:  # a name too long for the file system, a loop of symlinks...
        shown = path if len(path) <= 80 else path[:79] + "…"
        raise ScriptError(f"{op}: cannot use the path {shown}: {e.strerror or e}",
                          hint="use a shorter, plain path inside the allowed folders") from None


def _resolve(path: str, raw: Path, roots: list[Path], op: str, must_exist: bool) -> Path:
    candidates = [raw] if raw.is_absolute() else [root / raw for root in roots]
    for cand in candidates:
        real = Path(os.path.realpath(cand))
        for root in roots:
            if real == root or root in real.parents:
                if must_exist and not real.exists():
                    break
                return real
    if raw.is_absolute() or any(Path(os.path.realpath(c)).exists() for c in candidates):
        raise ScriptError(f"{op}: {path} is outside the allowed folders",
                          hint="allowed: " + ", ".join(str(r) for r in roots))
    raise ScriptError(f"{op}: file not found: {path}", hint="looked in: " + ", ".join(str(r) for r in roots))
