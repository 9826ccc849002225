"""Errors: every kind is a ViwoError, located (file:line:col), rendered with the source line, a caret
and a hint; no Python traceback reaches the user."""

from __future__ import annotations

import json

import pytest

import viwoscript
from viwoscript.errors import (
    ArgumentError,
    GasExhaustedError,
    IncompleteInputError,
    InternalError,
    ScriptError,
    UnknownOpcodeError,
    ViwoError,
    ViwoSyntaxError,
)
from viwoscript.opcodes import P, opcode
from viwoscript.runtime import Runtime


def fail(source, **kw) -> ViwoError:
    with pytest.raises(ViwoError) as info:
        Runtime().run(source, filename="t.viwo", **kw)
    return info.value


def test_argument_error_is_located_with_caret_and_usage_hint():
    err = fail('(std.seq\n  (std.let x 1)\n  (+ x "a"))')
    assert isinstance(err, ArgumentError)
    assert err.message == "+: expected number for right"
    assert (err.span.line, err.span.col) == (3, 3)
    text = err.render()
    assert text.splitlines() == [
        "error[ArgumentError]: +: expected number for right",
        "  --> t.viwo:3:3",
        "   |",
        ' 3 |   (+ x "a"))',
        "   |   ^^^^^^^^^",
        "  = help: usage: (+ left: number right...: number) -> number",
    ]


def test_library_type_error_hint_shows_the_signature():
    err = fail("(list.get 5 1)")
    assert err.message == "list.get: expected array for list"
    assert err.hint == "usage: (list.get list: array index: number) -> any"
    assert "= help: usage: (list.get" in err.render()


def test_syntax_error():
    err = fail("(+ 1 2))")
    assert isinstance(err, ViwoSyntaxError) and not isinstance(err, IncompleteInputError)
    assert err.span.line == 1 and err.span.col == 8
    assert "t.viwo:1:8" in err.render()


@pytest.mark.parametrize("source", ["(std.seq (std.let x 1)", '(str.concat "abc', "[1 2", '{"a" 1'])
def test_incomplete_input_is_distinct(source):
    err = fail(source)
    assert isinstance(err, IncompleteInputError)
    assert err.hint


def test_unknown_opcode_suggests():
    err = fail("(list.lenght [1])")
    assert isinstance(err, UnknownOpcodeError)
    assert err.message == "Unknown opcode: list.lenght"
    assert "list.len" in err.hint


def test_runtime_error_from_throw_keeps_the_message():
    err = fail('(std.seq (std.let a 1)\n (std.throw "custom failure"))')
    assert isinstance(err, ScriptError) and err.kind == "RuntimeError"
    assert err.message == "custom failure"
    assert err.span.line == 2


def test_limit_error():
    err = fail("(std.while true (+ 1 1))", limits=viwoscript.Limits(gas=100))
    assert isinstance(err, GasExhaustedError)
    assert err.message == "Script ran out of gas!"
    assert "--gas" in err.hint


def test_json_form_errors_point_at_the_json_token():
    source = json.dumps(["std.seq", ["std.let", "x", 1], ["+", ["std.var", "x"], "a"]], indent=2)
    err = fail(source)
    line = source.splitlines()[err.span.line - 1]
    assert line.strip().startswith('"+"') or line.strip().startswith("[")
    assert "t.viwo:" in err.render()


def test_bug_in_an_opcode_is_an_internal_error_not_a_traceback():
    ops: list = []

    @opcode("test.broken", P("x"), into=ops)
    def broken(ev, x):
        return 1 / 0

    rt = Runtime(opcodes=ops)
    with pytest.raises(InternalError) as info:
        rt.run("(test.broken 1)", filename="b.viwo")
    text = info.value.render()
    assert "test.broken: internal error: ZeroDivisionError" in text
    assert "b.viwo:1:1" in text
    assert "Traceback" not in text
    assert isinstance(info.value.__cause__, ZeroDivisionError)  # kept for --debug


def test_errors_render_with_color():
    err = fail("(+ 1 true)")
    assert "\x1b[" in err.render(color=True)
    assert "\x1b[" not in err.render()


def test_try_catches_runtime_errors_with_their_message():
    assert viwoscript.run('(std.try (list.get 5 1) e e)') == "list.get: expected array for list"
    assert viwoscript.run('(std.try (obj.get {} "k") e (str.concat "caught: " e))') == "caught: obj.get: key 'k' not found"


def test_diagnostics_are_json_serialisable():
    diags = viwoscript.check("(lst.map 1)", filename="c.viwo")
    assert [d.to_dict()["kind"] for d in diags] == ["NameError"]
    json.dumps([d.to_dict() for d in diags])


def test_a_very_long_line_is_shown_around_the_caret():
    err = fail("(std.seq " + "1 " * 200 + '(+ 1 "a") ' + "2 " * 200 + ")")
    lines = err.render().splitlines()
    assert all(len(line) < 140 for line in lines)
    source_line, caret_line = lines[3], lines[4]
    col = caret_line.index("^")
    assert source_line[col:col + 9] == '(+ 1 "a")'
