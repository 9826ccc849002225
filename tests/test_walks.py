"""Every traversal of a value (to text, JSON, display, copies, metadata) is counted against the limits.

A list doubled into itself 40 times has 2⁴⁰ parts but only 41 lists: walking it must stop at the size
limit (``max_nodes``), the gas and the clock (``timeout``), with a LimitError located at the opcode —
never a hang, a MemoryError or an InternalError. Under both runners, in the REPL's printer and when an
image's metadata is written.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from viwoscript import Limits
from viwoscript.errors import GasExhaustedError, InternalError, LimitError, SizeLimitError, TimeoutLimitError
from viwoscript.limits import Budget, Meter
from viwoscript.runtime import Runtime
from viwoscript.values import display, join_text, preview, to_display, to_json_text, to_json_value, to_text

BOMB = ("(std.let a [1]) (std.let o {}) (std.let i 0)\n"
        "(std.while (< i 40) (std.seq (std.set a [a a]) (std.set i (+ i 1))))\n"
        "(obj.set o \"k\" a)\n")

#: Each opcode that walks a value, applied to the bomb (line 4 of the script).
WALKS = {
    "std.string": "(std.string a)",
    "str.concat": '(str.concat "x" a)',
    "str.concat many": '(str.concat "x" a 1 a)',
    "str.join": '(str.join a "-")',
    "json.stringify": "(json.stringify a)",
    "json.stringify object": "(json.stringify o)",
    "std.log": '(std.log "v" a)',
    "std.warn": "(std.warn a)",
    "send": '(send "e" a)',
    "image.with_metadata": '(image.with_metadata (image.new 4 4 "#000") {"x" a})',
    "image.save": '(image.save (image.with_metadata (image.new 4 4 "#000") {"x" 1}) "out.png")',
    # grant parameters nest at most 32 deep: a 30-level bomb
    "delegate": ('(std.seq (std.let b [1]) (std.let j 0) (std.while (< j 30) (std.seq (std.set b [b b]) (std.set j (+ j 1))))'
                 ' (delegate (get_capability "diffusers.generate") {"max_steps" b}))'),
}
RUNNERS = ("compiled", "tree")


def _run(expr: str, limits: Limits, runner: str, tmp_path, **kw):
    rt = Runtime(runner=runner, roots=[tmp_path], grants=[{"type": "diffusers.generate", "provider": "fake"}], **kw)
    if "image.save" in expr:  # the bomb reaches the metadata as a script argument from the host
        bomb: list = [1]
        for _ in range(40):
            bomb = [bomb, bomb]
        return rt.run(expr.replace('"out.png"', f'"{tmp_path / "out.png"}"'), limits=limits, args=[bomb])
    return rt.run(BOMB + expr, limits=limits)


def _stops(expr, limits, runner, tmp_path, kind=LimitError):
    with pytest.raises(LimitError) as info:
        _run(expr, limits, runner, tmp_path)
    err = info.value
    assert isinstance(err, kind), err
    assert not isinstance(err, InternalError)
    assert err.span is not None and err.span.line == (1 if "image.save" in expr else 4), err
    return err


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("name", sorted(WALKS))
def test_every_walk_stops_at_the_size_limit(name, runner, tmp_path):
    err = _stops(WALKS[name], Limits(timeout=120, max_nodes=50_000), runner, tmp_path, SizeLimitError)
    assert "50,000" in err.message and "max_nodes" in err.hint


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("name", ["std.string", "json.stringify", "str.join", "image.save"])
def test_walks_spend_gas(name, runner, tmp_path):
    _stops(WALKS[name], Limits(gas=2_000, max_nodes=10**12), runner, tmp_path, GasExhaustedError)


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_bomb_under_the_embedding_timeout(runner, tmp_path):
    # the issue's own case: an embedding host's Limits(timeout=3), every other limit at its default
    _stops(WALKS["str.concat"], Limits(timeout=3), runner, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("name", sorted(WALKS))
def test_every_walk_under_the_embedding_timeout(name, runner, tmp_path):
    _stops(WALKS[name], Limits(timeout=3), runner, tmp_path)
    _stops(WALKS[name], Limits(timeout=3, max_nodes=10**12), runner, tmp_path, TimeoutLimitError)


def _bomb(n=40):
    a: list = [1]
    for _ in range(n):
        a = [a, a]
    return a


@pytest.mark.parametrize("as_json", [False, True])
def test_repl_printing_a_bomb_is_an_error_and_the_session_goes_on(as_json, monkeypatch, tmp_path):
    from viwoscript.config import Config
    from viwoscript.repl import ReplSession

    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    s = ReplSession(Config(), stdout=out, stderr=err, as_json=as_json)
    s.runtime.limits = Limits(timeout=3)
    assert s.handle(BOMB + "a") is False
    assert "LimitError" in err.getvalue() and "printing the result" in err.getvalue()
    assert "internal" not in err.getvalue().lower()
    assert s.handle("(+ 1 2)") is True and out.getvalue().endswith("3\n")


@pytest.mark.parametrize("limits", [Limits(timeout=3, max_nodes=100_000), Limits(timeout=0.5, max_nodes=10**12)])
def test_terminal_printing_stops_within_the_limits(limits, tmp_path):
    from viwoscript.terminal.console import ImageSaver, Terminal

    t = Terminal(ImageSaver(tmp_path), stdout=io.StringIO(), stderr=io.StringIO())
    for as_json in (False, True):
        with pytest.raises(LimitError):
            t.result(_bomb(), as_json=as_json, limits=limits)


def _visit_past_the_default():
    m = Meter(None, "to text")
    m.visited = m.max_nodes - 1000  # as if it had walked that far already
    to_text(_bomb(), m)


def test_host_side_walks_are_bounded_without_a_budget():
    # no run, no budget: the default size limit still ends the walk
    assert Meter(None).max_nodes == Limits().max_nodes == 10_000_000
    with pytest.raises(SizeLimitError, match="10,000,000 parts"):
        _visit_past_the_default()
    small = Budget(Limits(max_nodes=100_000))
    for f in (to_text, to_json_value, to_display, display, join_text):
        with pytest.raises(SizeLimitError, match="100,000 parts"):
            f(_bomb(), budget=small)
    with pytest.raises(SizeLimitError, match="100,000 parts"):
        to_json_text(_bomb(), None, small)
    assert preview(_bomb()) == "a list of 2 items" or len(preview(_bomb())) <= 60


def test_writing_metadata_is_bounded(tmp_path):
    from viwoscript.io import write_image
    from viwoscript.values import Image

    img = Image(np.zeros((1, 1), np.uint8))
    with pytest.raises(TimeoutLimitError):
        write_image(img, tmp_path / "x.png", args=[_bomb()], budget=Budget(Limits(timeout=0.5, max_nodes=10**12)))
    with pytest.raises(SizeLimitError):
        write_image(img, tmp_path / "x.png", args=[_bomb()], budget=Budget(Limits(max_nodes=100_000)))
    assert not (tmp_path / "x.png").exists()


def test_long_text_from_shared_strings_is_held_to_max_string():
    s = "x" * 1000
    lst = [s] * 100
    with pytest.raises(SizeLimitError, match="text of more than"):
        to_text(lst, Meter(Budget(Limits(max_string=50_000))))
    with pytest.raises(SizeLimitError, match="text of more than"):
        to_json_text([lst, lst], None, Budget(Limits(max_string=50_000)))
    rt = Runtime()
    with pytest.raises(SizeLimitError) as info:
        rt.run('(std.let s (str.concat "xxxxxxxxxx" "xxxxxxxxxx")) (std.let l [s s s s s s s s s s])'
               " (std.set l [l l l l l l l l l l]) (std.set l [l l l l l l l l l l]) (json.stringify [l l l l])",
               limits=Limits(max_string=100_000))
    assert info.value.span.col > 1


def test_small_walks_cost_no_gas_and_big_ones_cost_a_unit_per_hundred_values():
    rt = Runtime()
    small = rt.run("(std.string [1 2 3])", limits=Limits(gas=2))
    assert small == "1,2,3"
    # (std.string x) + the (list.new ...) literal = 2 opcodes; 10,000 items cost 100 more
    items = " ".join(["1"] * 10_000)
    assert rt.run(f"(std.string [{items}])", limits=Limits(gas=2 + 100)).startswith("1,1")
    with pytest.raises(GasExhaustedError):
        rt.run(f"(std.string [{items}])", limits=Limits(gas=2 + 99))


def test_messages_show_a_bounded_preview_of_the_value():
    with pytest.raises(LimitError.__mro__[1]) as info:  # ViwoError
        Runtime().run(BOMB + "(std.apply a 1)", limits=Limits(timeout=3))
    assert len(info.value.message) < 120 and "apply: func must be a lambda" in info.value.message
