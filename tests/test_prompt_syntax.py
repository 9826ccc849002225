"""A1111's prompt syntax (viwoscript/models/prompt_syntax.py) and chunking (models/prompts.py: chunk_tokens):
golden tables of prompts → weighted fragments (A1111's own doctest examples among them), extra-network
tags, and properties (never raises, plain text comes back unchanged). Pure Python: no torch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viwoscript.models.prompt_syntax import extract_tags, parse_prompt_attention, unsupported_syntax
from viwoscript.models.prompts import Chunk, chunk_tokens

# A1111's doctest of parse_prompt_attention, and more cases computed by hand from its algorithm.
GOLDEN = [
    ("normal text", [["normal text", 1.0]]),
    ("an (important) word", [["an ", 1.0], ["important", 1.1], [" word", 1.0]]),
    ("(unbalanced", [["unbalanced", 1.1]]),
    ("\\(literal\\]", [["(literal]", 1.0]]),
    ("(unnecessary)(parens)", [["unnecessaryparens", 1.1]]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [["a ", 1.0], ["house", 1.1 * 1.1 * 1.3], [" ", 1.1], ["on", 1.0], [" a ", 1.1], ["hill", 0.55],
      [", sun, ", 1.1], ["sky", 1.1 ** 4], [".", 1.1]]),
    ("", [["", 1.0]]),
    ("(red:1.3) apple", [["red", 1.3], [" apple", 1.0]]),
    ("( red : 1.3 )", [[" red ", 1.3]]),
    ("[faded]", [["faded", 1 / 1.1]]),
    ("[[faded]]", [["faded", 1 / 1.1 / 1.1]]),
    ("(a [b] c)", [["a ", 1.1], ["b", 1.1 / 1.1], [" c", 1.1]]),
    ("(cat:-0.5)", [["cat", -0.5]]),
    ("(cat:+2)", [["cat", 2.0]]),
    ("a:b", [["a:b", 1.0]]),  # a colon outside "(x:w)" is text
    ("(a:b)", [["a:b", 1.1]]),  # not a number: the colon is text and ")" multiplies by 1.1
    ("x)y]z", [["x)y]z", 1.0]]),  # closers without openers are text
    ("\\\\ back", [["\\ back", 1.0]]),
    ("lone \\ slash", [["lone  slash", 1.0]]),  # A1111 drops a lone backslash
    ("a BREAK b", [["a", 1.0], ["BREAK", -1.0], ["b", 1.0]]),
    ("a\nBREAK\nb", [["a", 1.0], ["BREAK", -1.0], ["b", 1.0]]),
    ("aBREAK b", [["aBREAK b", 1.0]]),  # only the word on its own
    ("a break b", [["a break b", 1.0]]),  # only upper case
    ("BREAK", [["", 1.0], ["BREAK", -1.0], ["", 1.0]]),
    ("(a BREAK b)", [["a", 1.1], ["BREAK", -1.1], ["b", 1.1]]),  # A1111: then read as the word BREAK
    ("(x:1.5) (y:1.5)", [["x", 1.5], [" ", 1.0], ["y", 1.5]]),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN, ids=[g[0] or "empty" for g in GOLDEN])
def test_golden_fragments(text, expected):
    got = parse_prompt_attention(text)
    assert [f[0] for f in got] == [e[0] for e in expected]
    assert [f[1] for f in got] == pytest.approx([e[1] for e in expected], rel=1e-12)


def test_weights_multiply_in_a1111_order_to_the_last_bit():
    # A1111 multiplies each fragment's weight in place, innermost bracket first: same floats, same merges
    assert parse_prompt_attention("(((sky)))")[0][1] == 1.0 * 1.1 * 1.1 * 1.1
    assert parse_prompt_attention("((house:1.3))")[0][1] == 1.0 * 1.3 * 1.1


def test_bad_numbers_never_raise():
    assert parse_prompt_attention("(x:1.2.3)") == [["x", 1.2]]
    assert parse_prompt_attention("(x:.)") == [["x", 1.0]]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab ,:()[]\\<>|.1-+BREAK\n")), max_size=60))
def test_any_text_parses(text):
    frags = parse_prompt_attention(text)
    assert frags and all(isinstance(t, str) and isinstance(w, float) for t, w in frags)
    text2, tags = extract_tags(text)
    assert all(t.text in text for t in tags) and len(text2) <= len(text)
    unsupported_syntax(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="()[]\\:<", blacklist_categories=("Cs",)), max_size=80))
def test_plain_text_round_trips(text):
    frags = parse_prompt_attention(text)
    if "BREAK" in text:
        return
    assert frags == [[text, 1.0]]
    assert extract_tags(text) == (text, [])


def test_extra_network_tags_are_removed_as_a1111_removes_them():
    text, tags = extract_tags("a cat <lora:Film Grain:0.8>, <lora:detail:1:te=0.5> in rain <hypernet:x>")
    assert text == "a cat ,  in rain "
    assert [(t.kind, t.args) for t in tags] == [("lora", ("Film Grain", "0.8")), ("lora", ("detail", "1", "te=0.5")),
                                                ("hypernet", ("x",))]
    text, tags = extract_tags("<lora:a:1> b <other:c>", kinds=("lora",))
    assert text == " b <other:c>" and [t.text for t in tags] == ["<lora:a:1>"]
    assert extract_tags("no <tag> here, <:x>") == ("no <tag> here, <:x>", [])


def test_unsupported_syntax_is_named():
    assert unsupported_syntax("a [cat:dog:0.5] b")[0].startswith("prompt editing [cat:dog:0.5]")
    assert unsupported_syntax("a [dog:10]")[0].startswith("prompt editing [dog:10]")
    assert unsupported_syntax("[cat|dog]")[0].startswith("alternation [cat|dog]")
    assert unsupported_syntax("(cat:1.2) [dog] a:b") == []


# --- chunking (A1111's tokenize_line) on token lists -------------------------------------------------

COMMA = 0


def chunks_of(fragments, tokenized, length=10, **kw):
    return [(c.tokens, c.multipliers) for c in chunk_tokens(fragments, tokenized, chunk_length=length,
                                                           comma_token=COMMA, **kw)]


def test_chunks_fill_then_start_a_new_one():
    toks = list(range(1, 24))
    out = chunks_of([["x", 1.0]], [toks])
    assert [c[0] for c in out] == [toks[:10], toks[10:20], toks[20:]]
    assert chunks_of([["", 1.0]], [[]]) == [([], [])]  # an empty prompt is one empty chunk


def test_a_full_chunk_breaks_after_a_recent_comma():
    toks = [1, 2, 3, 4, 5, 6, COMMA, 7, 8, 9, 10, 11]
    out = chunks_of([["x", 1.0]], [toks], backtrack=5)
    assert [c[0] for c in out] == [[1, 2, 3, 4, 5, 6, COMMA], [7, 8, 9, 10, 11]]
    out = chunks_of([["x", 1.0]], [toks], backtrack=2)  # the comma is too far back
    assert [c[0] for c in out] == [toks[:10], toks[10:]]


def test_break_and_weights_follow_their_tokens():
    out = chunks_of([["a", 1.3], ["BREAK", -1.0], ["b", 0.5]], [[1, 2], [9], [3]])
    assert out == [([1, 2], [1.3, 1.3]), ([3], [0.5])]
    out = chunks_of([["a", 1.0], ["BREAK", -1.1], ["b", 1.0]], [[1], [9], [3]])  # BREAK in brackets: a word
    assert out == [([1, 9, 3], [1.0, -1.1, 1.0])]


def test_an_embedding_never_straddles_two_chunks():
    def find(tokens, pos):
        return ([100, 101, 102], 2) if tokens[pos:pos + 2] == [7, 7] else None

    out = chunks_of([["x", 2.0]], [[1, 2, 3, 4, 5, 6, 7, 8, 7, 7, 9]], find_embedding=find)
    assert out == [([1, 2, 3, 4, 5, 6, 7, 8], [2.0] * 8), ([100, 101, 102, 9], [2.0] * 4)]
    assert chunk_tokens([["x", 1.0]], [[1]], chunk_length=10, comma_token=None) == [Chunk([1], [1.0])]
