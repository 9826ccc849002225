"""Messages speak the language (null, NaN, number, string), blame the right place and say what to do."""

from __future__ import annotations

import pytest

from viwoscript.errors import ScriptError, ViwoError, ViwoSyntaxError
from viwoscript.runtime import Runtime
from viwoscript.values import describe, preview


def _error(src: str, runner: str = "compiled") -> ViwoError:
    with pytest.raises(ViwoError) as info:
        Runtime(runner=runner).run(src)
    return info.value


@pytest.mark.parametrize("value, shown", [
    (None, "null"), (float("nan"), "number NaN"), (100000.0, "number 100000"), (1.5, "number 1.5"),
    ("nope", 'string "nope"'), ([1, 2], "array [1, 2]"), ({"a": None}, 'object {"a": null}'),
    (float("-inf"), "number -Infinity"), (True, "boolean true")])
def test_describe_uses_the_language_names(value, shown):
    assert describe(value) == shown


def test_preview_is_short_whatever_the_value():
    assert len(preview(list(range(10**6)))) <= 60
    assert preview("x" * 1000).endswith("…") and len(preview("x" * 1000)) == 60


@pytest.mark.parametrize("runner", ["compiled", "tree"])
def test_a_variable_holding_a_lambda_called_as_an_opcode_hints_std_apply(runner):
    src = "(std.let f (std.lambda (x) x))\n(f 3)"
    err = _error(src, runner)
    assert err.message == "Unknown opcode: f" and "(std.apply f ...)" in err.hint
    (d,) = [d for d in Runtime().check(src) if d.severity == "error"]
    assert d.hint == "f is a variable: call the lambda it holds with (std.apply f ...)"


@pytest.mark.parametrize("head, meant", [("if", "std.if"), ("let", "std.let"), ("while", "std.while"),
                                         ("lambda", "std.lambda")])
def test_a_bare_special_form_name_suggests_the_std_one(head, meant):
    err = _error(f"({head} 1 2)")
    assert err.hint.startswith(f"did you mean '{meant}'")


@pytest.mark.parametrize("src, message", [
    ("(+ 1. 2)", "the number 1. needs a digit after its decimal point"),
    ("(+ 0x10 2)", "numbers are decimal: no 0x prefix"),
    ("(+ 007 1)", "a number does not start with 0"),
    ("(+ 1e 2)", "the number 1e needs digits in its exponent"),
    ("(+ .5 1)", "the number .5 needs a digit before its decimal point"),
    ("(+ +5 1)", "the number +5 has no leading +"),
    ("(+ NaN 1)", "NaN is not a number literal (it would read an undeclared variable)"),
    ("-Infinity", "-Infinity is not a number literal (it would read an undeclared variable)"),
    ('"\\ud800"', "the string has half of a UTF-16 surrogate pair (\\ud800), which no text file can hold")])
def test_the_reader_refuses_what_it_cannot_read(src, message):
    with pytest.raises(ViwoSyntaxError) as info:
        Runtime().run(src)
    assert info.value.message == message and info.value.hint


def test_reserved_looking_names_are_still_names():
    assert Runtime().run("(std.seq (std.let NaN 1) 2)") == 2


@pytest.mark.parametrize("src, col, fragment", [
    ("(+ 1. 2)", 5, "decimal point"), ("(+ 0x10 2)", 5, "0x"), ("(+ 1 \x00 2)", 6, "U+0000"),
    ("(+ 12e+ 1)", 7, "exponent"), ("(+ .5 1)", 4, ".5"), ("(+ NaN 1)", 4, "NaN"), ("Infinity", 1, "Infinity")])
def test_the_reader_blames_the_right_character(src, col, fragment):
    with pytest.raises(ViwoSyntaxError) as info:
        Runtime().run(src)
    assert info.value.span.col == col and fragment in info.value.message and info.value.hint


def test_lone_surrogates_never_reach_a_value():
    with pytest.raises(ViwoSyntaxError, match="surrogate") as info:
        Runtime().run('(std.let s "ok")\n(str.concat s "\\ud800")')
    assert (info.value.span.line, info.value.span.col) == (2, 15)
    with pytest.raises(ViwoSyntaxError, match="surrogate"):
        Runtime().run('["std.string", "\\udfff"]')
    with pytest.raises(ScriptError, match="surrogate") as info:
        Runtime().run('(json.parse "[\\"\\\\ud800\\"]")')
    assert info.value.span is not None
    assert Runtime().run('(json.parse "\\"\\\\ud83d\\\\ude00\\"")') == "😀"


@pytest.mark.parametrize("runner", ["compiled", "tree"])
def test_odd_variable_names(runner):
    rt = Runtime(runner=runner)
    assert rt.run("(std.var (obj.new))") is None
    err = _error("(std.seq 1 (std.for (obj.new) [1] 1))", runner)
    assert err.message == "std.for: expected string for name, got object {}" and err.span.col == 12


def test_paths_the_file_system_refuses_are_script_errors(tmp_path):
    rt = Runtime(roots=[tmp_path])
    for src in (f'(image.load "{"y" * 5000}.png")', f'(std.import "{"y" * 5000}")',
                f'(std.import "{"y" * 5000}.viwo")'):
        with pytest.raises(ScriptError) as info:
            rt.run(src)
        assert info.value.span is not None and len(info.value.message) < 300


def test_entity_metadata_that_contains_itself(tmp_path):
    rt = Runtime(store=tmp_path / "s", grants=[{"type": "entity.control"}])
    with pytest.raises(ScriptError, match="contains itself"):
        rt.run('(std.let m {}) (obj.set m "m" m) (entity.save (image.new 2 2 "#000") "x" m)')
