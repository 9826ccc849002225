"""Every runnable example under examples/ runs on CPU with no weights and gives its documented result."""

from __future__ import annotations

from pathlib import Path

import pytest

from viwoscript.runtime import Runtime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(path: Path, args=None):
    rt = Runtime(roots=[EXAMPLES], grants="default", canvas_size=(256, 256))
    return rt.run(path.read_text(encoding="utf-8"), filename=str(path), args=args)


# *.viwo-template.json files are templates, not scripts: tests/test_templates_examples.py imports and runs them
@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".viwo", ".json")
                                        and not p.name.endswith(".viwo-template.json")),
                         ids=lambda p: p.name)
def test_example_runs(path):
    errors = [d for d in Runtime().check(path.read_text(encoding="utf-8"), filename=str(path))
              if d.severity == "error"]
    assert errors == []
    run_example(path)


def test_hello():
    assert run_example(EXAMPLES / "hello.viwo") == {
        "greeting": "Hello, world!", "squares": [1, 4, 9, 16, 25], "sum": 55}
    assert run_example(EXAMPLES / "hello.viwo", ["Ada"])["greeting"] == "Hello, Ada!"


def test_fizzbuzz():
    assert run_example(EXAMPLES / "fizzbuzz.json") == (
        "1 2 Fizz 4 Buzz Fizz 7 8 Fizz Buzz 11 Fizz 13 14 FizzBuzz")
    assert run_example(EXAMPLES / "fizzbuzz.json", [5]) == "1 2 Fizz 4 Buzz"
