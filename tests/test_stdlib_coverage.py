"""Every pure builtin opcode is exercised by at least one golden file in tests/lang/*.viwo.

Pure means: everything in the builtin registry except the canvas, kernel and capability opcodes
(those have their own pixel and capability tests). A call counts when its head appears in evaluated
code; data under ``std.quote`` and raw JSON objects is not code and does not count.
"""

from __future__ import annotations

from pathlib import Path

from viwoscript.nodes import Array, Atom, Node, Object
from viwoscript.runtime import builtin_registry
from viwoscript.syntax import parse

LANG_DIR = Path(__file__).parent / "lang"
EXCLUDED_CATEGORIES = {"canvas", "kernel", "capability"}
EXCLUDED_MODULES = {"viwoscript.stdlib.canvas", "viwoscript.stdlib.kernel"}


def golden_files() -> list[Path]:
    return sorted(LANG_DIR.glob("*.viwo"))


def pure_opcodes() -> set[str]:
    names = set()
    for spec in builtin_registry():
        module = getattr(spec.fn, "__module__", "") or ""
        if spec.category in EXCLUDED_CATEGORIES or module in EXCLUDED_MODULES:
            continue
        names.add(spec.name)
    return names


def heads(node: Node, out: set[str]) -> set[str]:
    """Collect the opcode names called anywhere in evaluated code."""
    if isinstance(node, Array):
        items = node.items
        head = items[0] if items else None
        if isinstance(head, Atom) and isinstance(head.value, str):
            out.add(head.value)
            if head.value == "std.quote":
                return out  # quoted data is not code
        for item in items:
            heads(item, out)
    elif isinstance(node, Object):
        pass  # raw JSON objects are literal data
    return out


def covered() -> dict[str, set[str]]:
    """Opcode name -> golden files that call it."""
    where: dict[str, set[str]] = {}
    for path in golden_files():
        tree = parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in heads(tree, set()):
            where.setdefault(name, set()).add(path.name)
    return where


def test_golden_files_exist():
    names = {p.name for p in golden_files()}
    for required in ("math.viwo", "boolean.viwo", "list.viwo", "obj.viwo", "string.viwo", "time.viwo",
                     "control.viwo", "convert.viwo", "import.viwo"):
        assert required in names


def test_every_pure_opcode_has_a_golden_test():
    where = covered()
    missing = sorted(name for name in pure_opcodes() if name not in where)
    assert not missing, (
        "pure opcodes without a golden test in tests/lang/*.viwo: " + ", ".join(missing)
        + "\nadd at least one form calling each (followed by ;=> value or ;!! Error: message)"
    )
