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


def test_json_examples_are_in_canonical_form():
    # Issue 13 item 26: examples/fizzbuzz.json was not what `viwo fmt` prints.
    from viwoscript.syntax import parse, to_json

    scripts = [p for p in (ROOT / "examples").glob("*.json") if not p.name.endswith(".viwo-template.json")]
    assert scripts
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        assert to_json(parse(text, filename=str(path))) + "\n" == text, f"{path.name}: run `viwo fmt --write` on it"


def test_capabilities_doc_give_capability_example_runs_as_described():
    # Issue 13 item 26: the example needs a caller, which the doc now says.
    import re

    import pytest

    from viwoscript.errors import ArgumentError
    from viwoscript.runtime import Runtime

    doc = (ROOT / "docs" / "capabilities.md").read_text(encoding="utf-8")
    block = re.search(r"```lisp\n(\(std\.let small.*?)```", doc, re.S).group(1)
    assert 'Runtime(caller={"id": "user-1"}' in block
    script = '(std.seq (std.let gen (get_capability "diffusers.generate"))\n' + block + ")"
    rt = Runtime(caller={"id": "user-1"}, grants="default")
    assert rt.run(script) is None
    assert [h.type for h in rt.caps.held_by("user-1")] == ["diffusers.generate"]
    with pytest.raises(ArgumentError, match="expected target entity, got null"):
        Runtime(grants="default").run(script)


def test_cli_doc_caps_listing_names_every_implementation():
    # Issue 13 item 26: the `viwo caps` transcript showed 2 of the 7 entries.
    import re

    from viwoscript.runtime import Runtime
    from viwoscript.terminal.describe import capabilities

    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"\$ viwo caps \| grep -v '\^ '\n(.*?)```", doc, re.S).group(1)
    documented = [tuple(line.split("  ")[:2]) for line in block.splitlines()]
    actual = sorted((e["type"], f"({e['provider']})") for e in capabilities(Runtime(grants="default")) if e.get("type"))
    assert sorted(documented) == actual
