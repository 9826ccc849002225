"""The compute budget of a whole batch: the sum of each item's width × height × effective steps / 1e6,
checked against the grant's max_compute (and the script's own lower budget) before anything runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from viwoscript.errors import ArgumentError, CapabilityError
from viwoscript.runtime import Runtime
from viwoscript.stdlib.batch import item_costs


def rt_with(events=None, **params):
    return Runtime(grants=[{"type": "diffusers.generate", "params": params}],
                   on_event=(events.append if events is not None else None))


def batch(rt, base, variations, options="{}"):
    return rt.run(f'(batch.run (get_capability "diffusers.generate") "textToImage" {base} {variations} {options})')


def test_refused_before_the_first_item_runs_with_total_and_limit():
    events: list[dict] = []
    rt = rt_with(events, max_compute=1)
    # each item: 128 × 128 × 20 / 1e6 = 0.32768; four of them 1.311 > 1, though each alone fits
    with pytest.raises(CapabilityError) as info:
        batch(rt, '{"prompt" "x" "width" 128 "height" 128 "steps" 20}', "(batch.seeds 1 4)")
    assert info.value.message == ("batch.run: total compute 1.311 of 4 items exceeds this grant's max_compute of 1 "
                                  "(each item costs width × height × steps that run / 1e6)")
    assert "max_compute in the grant" in info.value.hint
    assert not [e for e in events if e["type"] == "progress"]  # nothing ran
    assert batch(rt, '{"prompt" "x" "width" 128 "height" 128 "steps" 20}', "(batch.seeds 1 3)")["ok"] == 3


def test_items_are_costed_as_the_call_will_run_them():
    rt = rt_with(max_steps=10, max_compute=1000)
    handle = rt.run('(get_capability "diffusers.generate")')
    evaluator = SimpleNamespace(runtime=rt)  # item_costs needs only the runtime
    got = item_costs(evaluator, handle, "textToImage", {"prompt": "x"}, [
        {"width": 100, "height": 64, "steps": 5},   # width rounded down to 96 as the call does
        {"width": 64, "height": 64},                # the default 25 steps lowered to the grant's max_steps 10
        {"width": 64, "height": 64, "steps": 11},   # over max_steps: fails on its own, costs nothing
        {"width": 64, "height": 64, "steps": 2, "batch": 3},
    ])
    assert got == [96 * 64 * 5 / 1e6, 64 * 64 * 10 / 1e6, None, 64 * 64 * 2 * 3 / 1e6]
    img2img = item_costs(evaluator, handle, "imageToImage", {"prompt": "x", "steps": 10},
                         [{"image": rt.run('(image.new 64 64 "white")'), "strength": 0.5}])
    assert img2img == [64 * 64 * 5 / 1e6]  # only strength × steps run


def test_failing_items_do_not_count_and_still_fail_on_their_own():
    rt = rt_with(max_compute=0.02)  # two items cost 0.0164; the one over max steps would cost 20
    out = batch(rt, '{"prompt" "x" "width" 64 "height" 64}', '[{"steps" 2} {"steps" 5000} {"steps" 2}]')
    assert [r["status"] for r in out["results"]] == ["ok", "error", "ok"]


def test_the_script_may_lower_the_budget_never_raise_it():
    rt = rt_with(max_compute=1)
    with pytest.raises(CapabilityError, match=r"total compute 0\.02458 of 3 items exceeds the max_compute you "
                                              r"passed of 0\.02"):
        batch(rt, '{"prompt" "x" "width" 64 "height" 64 "steps" 2}', "(batch.seeds 1 3)", '{"max_compute" 0.02}')
    with pytest.raises(CapabilityError, match="exceeds this grant's max_compute of 1"):
        batch(rt, '{"prompt" "x" "width" 128 "height" 128 "steps" 20}', "(batch.seeds 1 4)", '{"max_compute" 100}')
    with pytest.raises(ArgumentError, match="max_compute must be a number of at least 0"):
        batch(rt, '{"prompt" "x"}', "[1]", '{"max_compute" "lots"}')


def test_an_unlimited_grant_runs_any_total():
    rt = rt_with(max_compute=None)
    out = batch(rt, '{"prompt" "x" "width" 64 "height" 64 "steps" 1}', "(batch.seeds 1 8)")
    assert out["ok"] == 8
