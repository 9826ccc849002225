"""Shared test fixtures; tests/lang/*.viwo golden files are collected as test items."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from viwoscript.errors import ViwoError
from viwoscript.nodes import Array
from viwoscript.runtime import EVAL_RECURSION_LIMIT
from viwoscript.syntax import parse, to_json
from viwoscript.values import HostValue, Lambda

LANG_DIR = Path(__file__).parent / "lang"

# No per-example deadline: on a loaded CI machine one example may take longer than hypothesis' 200 ms
# default, and a timed assertion is not a property (performance goals live in benchmarks/).
settings.register_profile("viwoscript", deadline=None)
settings.load_profile("viwoscript")

# Runtime.run raises the recursion limit for its big-stack evaluation thread; do it up front so that
# hypothesis does not warn that it changed during a test.
sys.setrecursionlimit(max(sys.getrecursionlimit(), EVAL_RECURSION_LIMIT))


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix == ".viwo" and file_path.parent == LANG_DIR:
        return GoldenFile.from_parent(parent, path=file_path)
    return None


def split_golden(text: str):
    """Yield (line, code, expectation) where expectation is ("value", json) or ("error", kind, message)."""
    code: list[str] = []
    start = 1
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(";=>") or stripped.startswith(";!!"):
            body = stripped[3:].strip()
            if stripped.startswith(";=>"):
                yield start, "\n".join(code), ("value", body)
            else:
                kind, _, message = body.partition(":")
                yield start, "\n".join(code), ("error", kind.strip(), message.strip() or None)
            code = []
            start = no + 1
        else:
            if not code and not stripped:
                start = no + 1
                continue
            code.append(line)


def plain(value):
    """Script value → JSON-comparable data (lambdas and host values become marker strings)."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Lambda):
        return "<lambda>"
    if isinstance(value, HostValue):
        return f"<{value.type_name}>"
    return value


def same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b and (a != 0 or math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


class GoldenFile(pytest.File):
    def collect(self):
        text = self.path.read_text(encoding="utf-8")
        # Every case runs under both runners: the compiled one (the default) and the reference walker.
        for runner in ("compiled", "tree"):
            for line, code, expect in split_golden(text):
                name = f"line{line}" if runner == "compiled" else f"line{line}[tree]"
                yield GoldenItem.from_parent(self, name=name, code=code, expect=expect, line=line, runner=runner)


class GoldenItem(pytest.Item):
    def __init__(self, *, code, expect, line, runner, **kw):
        super().__init__(**kw)
        self.code, self.expect, self.line, self.runner = code, expect, line, runner

    def runtest(self):
        from viwoscript.runtime import Runtime

        # One Runtime (and variables) per file and runner: later cases may use earlier definitions.
        runtimes = self.parent.__dict__.setdefault("runtimes", {})
        rt = runtimes.get(self.runner)
        if rt is None:
            rt = runtimes[self.runner] = Runtime(roots=[LANG_DIR], runner=self.runner)
        for form in ("text", "json"):
            if form == "json":
                # The same program through the JSON form must behave identically.
                try:
                    tree = parse(self.code, filename=str(self.path))
                except ViwoError:
                    return
                if isinstance(tree, Array) and tree.head == "std.seq":
                    return  # several forms: they ran once already and may have side effects
                src = to_json(tree)
            else:
                src = self.code
            if form == "json" and self.expect[0] == "value" and "std.let" in self.code:
                return  # definitions would run twice
            self._run_one(rt, src, form)

    def _run_one(self, rt, src, form):
        kind = self.expect[0]
        try:
            value = rt.run(src, filename=str(self.path), scope=rt.globals)
        except ViwoError as e:
            if kind == "error":
                want_kind, want_msg = self.expect[1], self.expect[2]
                assert want_kind in {type(c).__name__ for c in type(e).__mro__} | {e.kind}, (
                    f"[{form}] expected {want_kind}, got {e.kind}: {e.message}")
                if want_msg is not None:
                    assert e.message == want_msg, f"[{form}] message {e.message!r} != {want_msg!r}"
                return
            raise AssertionError(f"[{form}] unexpected error: {e.render()}") from e
        if kind == "error":
            raise AssertionError(f"[{form}] expected {self.expect[1]}, got value {value!r}")
        want = json.loads(self.expect[1])
        got = plain(value)
        assert same(got, want), f"[{form}] got {json.dumps(got)}, expected {self.expect[1]}"

    def reportinfo(self):
        return self.path, self.line - 1, f"{self.path.name}:{self.line}"

    def repr_failure(self, excinfo):
        return f"{self.path.name}:{self.line}:\n{self.code}\n--> {excinfo.value}"


@pytest.fixture
def rt():
    from viwoscript.runtime import Runtime

    return Runtime()
