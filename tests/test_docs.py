"""Docs derived from declarations stay in sync with the code."""

from __future__ import annotations

from pathlib import Path

from viwoscript.docgen import stdlib_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_stdlib_reference_is_up_to_date():
    current = (ROOT / "docs" / "stdlib.md").read_text(encoding="utf-8")
    assert current == stdlib_markdown(), (
        "docs/stdlib.md is stale: regenerate it with `python -m viwoscript.docgen > docs/stdlib.md`")


def test_every_opcode_has_a_description():
    from viwoscript.runtime import builtin_registry

    missing = [spec.name for spec in builtin_registry() if not spec.description]
    assert not missing, f"opcodes without a docstring: {missing}"
