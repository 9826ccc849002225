"""Generate ``docs/stdlib.md`` from the opcode declarations: ``python -m viwoscript.docgen``.

The reference is derived, never written by hand, so it cannot drift from the code (a test compares it).
"""

from __future__ import annotations

import sys

from .opcodes import REQUIRED, Registry
from .runtime import builtin_registry

CATEGORY_TITLES = {
    "std": "std — variables, control flow, functions, conversions",
    "json": "json", "math": "math and arithmetic", "boolean": "comparison and logic",
    "list": "list", "data": "object construction", "object": "obj", "string": "str", "time": "time",
    "canvas": "canvas", "kernel": "capabilities", "capability": "capabilities",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(p) -> str:
    if p.variadic:
        return "…"
    if p.default is REQUIRED:
        return ""
    from .values import to_json_text

    return f"`{to_json_text(p.default)}`"


def stdlib_markdown(registry: Registry | None = None) -> str:
    reg = registry or builtin_registry()
    by_cat: dict[str, list] = {}
    for spec in reg:
        by_cat.setdefault(spec.category or "other", []).append(spec)
    out = ["# Standard library reference", "",
           "Generated from the opcode declarations by `python -m viwoscript.docgen > docs/stdlib.md`;",
           "`viwo ops NAME` shows the same. Semantics: [language.md](language.md).", ""]
    for cat in sorted(by_cat, key=lambda c: (list(CATEGORY_TITLES).index(c) if c in CATEGORY_TITLES else 99, c)):
        out += [f"## {CATEGORY_TITLES.get(cat, cat)}", ""]
        for spec in sorted(by_cat[cat], key=lambda s: s.name):
            out += [f"### `{spec.name}`", "", f"`{spec.signature()}`" + (" — lazy" if spec.lazy else ""), ""]
            if spec.description:
                out += [spec.description, ""]
            if spec.params:
                out += ["| parameter | type | default | notes |", "|---|---|---|---|"]
                for p in spec.params:
                    notes = p.description
                    if p.choices:
                        notes = (notes + " " if notes else "") + "one of " + ", ".join(f"`{c}`" for c in p.choices)
                    kind = p.kind if p.kind in ("name", "names", "block", "raw", "pairs") else p.type
                    out.append(f"| `{p.name}` | {kind} | {_default(p)} | {_cell(notes)} |")
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    sys.stdout.write(stdlib_markdown())


if __name__ == "__main__":
    main()
