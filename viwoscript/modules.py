"""``std.import``: ViwoScript modules from the shipped library (the top-level ``stdlib/`` folder,
installed as ``viwoscript.vlib``) or from the Runtime's allowed folders."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from .errors import ScriptError
from .scope import Scope

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*(?:/[a-z][a-z0-9_]*)*\Z")


def library_modules() -> list[str]:
    """Names of the modules shipped with viwoscript."""
    root = resources.files("viwoscript.vlib")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".viwo"))


def _read_library(name: str) -> tuple[str, str] | None:
    path = resources.files("viwoscript.vlib").joinpath(*f"{name}.viwo".split("/"))
    try:
        if not path.is_file():
            return None
    except OSError:  # a name too long for the file system
        return None
    return path.read_text(encoding="utf-8"), f"<stdlib>/{name}.viwo"


def load_module(ev, module: str) -> Any:
    cache: dict = ev.__dict__.setdefault("modules", {})
    loading: set = ev.__dict__.setdefault("modules_loading", set())
    if module in cache:
        return cache[module]
    if module in loading:
        raise ScriptError(f"std.import: circular import of '{module}'",
                          hint="move the shared part into a third module")
    if module.endswith((".viwo", ".json")):
        path = ev.runtime.resolve_path(module, "std.import")
        try:
            source, filename = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as e:
            raise ScriptError(f"std.import: cannot read {module}: {getattr(e, 'strerror', None) or e}",
                              hint="import a UTF-8 text file of ViwoScript") from None
    elif _NAME_RE.match(module):
        found = _read_library(module)
        if found is None:
            raise ScriptError(f"std.import: no module named '{module if len(module) <= 80 else module[:79] + '…'}'",
                              hint="available: " + ", ".join(library_modules())
                              + "; files under the allowed folders end in .viwo")
        source, filename = found
    else:
        raise ScriptError(f"std.import: invalid module name '{module}'",
                          hint="use a library name like \"lists\" or a path ending in .viwo")
    tree = ev.runtime.parse(source, filename=filename)
    loading.add(module)
    try:
        value = ev.run_module(tree, Scope(), source)
    finally:
        loading.discard(module)
    cache[module] = value
    return value
