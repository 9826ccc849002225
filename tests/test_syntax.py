"""Syntax: both forms, positions, printing, round trips, auto-detection, incomplete input."""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viwoscript.errors import IncompleteInputError, ViwoSyntaxError
from viwoscript.nodes import Array, Atom, Object, call, from_data, to_data
from viwoscript.syntax import detect_syntax, parse, to_json, to_text


def var(name):
    return call("std.var", Atom(name))


def test_text_and_json_give_the_same_tree():
    text = '(std.seq (std.let x 1) (+ x 2.5) [1 "a" null] {"k" true})'
    js = ('["std.seq", ["std.let", "x", 1], ["+", ["std.var", "x"], 2.5], ["list.new", 1, "a", null],'
          ' ["obj.new", ["k", true]]]')
    assert parse(text) == parse(js)


def test_bare_symbol_reads_a_variable_except_in_name_slots():
    tree = parse("(std.let x y)")
    assert tree == call("std.let", Atom("x"), var("y"))
    lam = parse("(std.lambda (a b) (+ a b))")
    assert lam.items[1] == Array((Atom("a"), Atom("b")))
    assert lam.items[2] == call("+", var("a"), var("b"))
    assert parse("(std.lambda [a b] a)").items[1] == Array((Atom("a"), Atom("b")))
    assert parse("(std.for item xs item)").items[1] == Atom("item")
    assert parse('(std.try (std.throw "x") e e)').items[2] == Atom("e")


def test_raw_json_object_in_text_form_is_data():
    tree = parse('(f {"steps": 20, "size": [512, 512], "nested": {"a": null}})')
    obj = tree.items[1]
    assert isinstance(obj, Object)
    assert to_data(obj) == {"steps": 20, "size": [512, 512], "nested": {"a": None}}
    assert isinstance(parse("{}"), Object)


def test_keywords_numbers_and_strings():
    assert parse("true") == Atom(True)
    assert parse("null") == Atom(None)
    assert parse("-1.5e3") == Atom(-1500.0)
    assert parse("7") == Atom(7) and parse("7") != Atom(7.0)
    assert parse('"a\\n\\u00e9"') == Atom("a\né")
    assert parse("(- 5 -5)") == call("-", Atom(5), Atom(-5))


def test_several_top_level_forms_become_a_seq_and_empty_is_null():
    assert parse("1 2") == call("std.seq", Atom(1), Atom(2))
    assert parse("  ; only a comment\n") == Atom(None)


def test_positions_text_form():
    tree = parse('(std.seq\n  (+ 1\n     "a"))', filename="f.viwo")
    inner = tree.items[1]
    assert (inner.span.line, inner.span.col) == (2, 3)
    assert (inner.items[2].span.line, inner.items[2].span.col) == (3, 6)
    assert inner.span.file == "f.viwo"


def test_positions_json_form():
    tree = parse('[\n "std.seq",\n  ["+", 1, 2]\n]')
    assert (tree.items[1].span.line, tree.items[1].span.col) == (3, 3)
    assert (tree.items[1].items[2].span.line, tree.items[1].items[2].span.col) == (3, 12)


@pytest.mark.parametrize("src, form", [
    ('["std.seq", 1]', "json"),
    ('  ; c\n["+", 1, 2]', "json"),
    ('["a" "b"]', "text"),
    ("(+ 1 2)", "text"),
    ("[1, 2]", "text"),
    ('["x"]', "json"),
])
def test_detect_syntax(src, form):
    assert detect_syntax(src) == form


def test_json_extension_forces_json():
    assert detect_syntax("1", "x.json") == "json"


@pytest.mark.parametrize("src", ["(+ 1", "(std.seq (+ 1 2)", '(str.len "abc', "[1 2", '{"a" 1', '["std.seq", 1'])
def test_incomplete_input_is_distinct(src):
    with pytest.raises(IncompleteInputError):
        parse(src)


@pytest.mark.parametrize("src", ["(+ 1))", "(+ 1 ,2)", "{\"a\" 1 \"b\"}", '"bad\\q"', "1x"])
def test_syntax_errors_are_located(src):
    with pytest.raises(ViwoSyntaxError) as info:
        parse(src, filename="s.viwo")
    err = info.value
    assert not isinstance(err, IncompleteInputError)
    assert err.span and err.span.line >= 1
    assert "s.viwo:" in err.render()


def test_json_form_rejects_text_only_syntax():
    with pytest.raises(ViwoSyntaxError):
        parse("(+ 1 2)", syntax="json")


def test_nesting_limit_is_a_syntax_error_not_a_crash():
    deep = "(" * 2000 + ")" * 2000
    with pytest.raises(ViwoSyntaxError, match="nesting"):
        parse(deep)


@pytest.mark.parametrize("make", [
    lambda n: "(list.new " * n + "1" + ")" * n,
    lambda n: "[" * n + "]" * n,
    lambda n: json.dumps(functools.reduce(lambda d, _: [d], range(n), 1)),
])
def test_nesting_limit_is_exactly_400_levels(make):
    # Issue 13 item 26: language.md says "deeper than 400 levels is a syntax error"; 401 was accepted.
    from viwoscript.syntax import MAX_NESTING, from_python

    assert MAX_NESTING == 400
    parse(make(400))
    with pytest.raises(ViwoSyntaxError, match="nesting deeper than 400 levels"):
        parse(make(401))
    data = functools.reduce(lambda d, _: [d], range(400), 1)
    from_python(data)
    with pytest.raises(ViwoSyntaxError, match="nesting deeper than 400 levels"):
        from_python([data])


def test_printers_produce_readable_text():
    tree = parse('["std.seq", ["std.let", "x", ["list.new", 1, 2]], ["obj.new", ["a", ["std.var", "x"]]]]')
    assert to_text(tree) == "(std.let x [1 2])\n\n{a x}\n"
    assert to_json(tree, indent=None) == (
        '["std.seq", ["std.let", "x", ["list.new", 1, 2]], ["obj.new", ["a", ["std.var", "x"]]]]')


# --- property tests: parse(print(tree)) == tree for both forms -------------------------------------

HEADS = ["std.seq", "std.let", "std.var", "std.lambda", "std.for", "std.try", "list.new", "obj.new", "+",
         "std.quote", "canvas.draw_stroke", "weird head", "true", "x"]
names = st.sampled_from(["x", "y", "my-var", "a b", "1x", "null", "é", ""])
atoms = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8), names,
).map(Atom)


def _arrays(children):
    return st.one_of(
        st.lists(children, max_size=5).map(lambda xs: Array(tuple(xs))),
        st.tuples(st.sampled_from(HEADS), st.lists(children, max_size=4)).map(
            lambda t: Array((Atom(t[0]), *t[1]))),
        names.map(lambda n: call("std.var", Atom(n))),
        st.lists(st.tuples(st.one_of(names.map(Atom), children), children), min_size=1, max_size=3).map(
            lambda ps: call("obj.new", *(Array((k, v)) for k, v in ps))),
        st.lists(st.tuples(st.text(max_size=5), children), max_size=3).map(
            lambda kv: Object(tuple(dict(kv).items()))),
    )


trees = st.recursive(atoms, _arrays, max_leaves=25)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_json_round_trip(tree):
    assert parse(to_json(tree), syntax="json") == tree
    assert parse(to_json(tree, indent=None), syntax="json") == tree


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_text_round_trip(tree):
    assert parse(to_text(tree), syntax="text") == tree


@settings(max_examples=200)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
                    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=4), c, max_size=3)),
                    max_leaves=20))
def test_from_data_to_data(data):
    assert to_data(from_data(data)) == data


def test_variable_reference_inside_a_names_list_round_trips():
    # Found by the round-trip property: in a names slot every item is read as a name, so a variable
    # reference there must be written out as (std.var x), not as the bare symbol x.
    tree = Array((Atom("std.lambda"), Array((Atom("std.seq"), Array((Atom("std.var"), Atom("x")))))))
    assert parse(to_text(tree), syntax="text") == tree
