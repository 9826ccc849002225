"""The ViwoScript batch module (stdlib/batch.viwo) through a granted fake diffusers.generate."""

from __future__ import annotations

import numpy as np
import pytest

from viwoscript.capabilities.fake import render
from viwoscript.errors import CapabilityError, InterruptedError_
from viwoscript.io import read_metadata
from viwoscript.runtime import Runtime

PRELUDE = '(std.let B (std.import "batch")) (std.let gen (get_capability "diffusers.generate"))\n'
SMALL = '{"width" 64 "height" 64 "steps" 2}'


def runtime(tmp_path, grants="default"):
    events: list[dict] = []
    rt = Runtime(roots=[tmp_path], grants=grants, on_event=events.append)
    return rt, events


def run(rt, code):
    return rt.run(f"(std.seq {PRELUDE} {code})")


def test_seed_sweep_matches_single_calls_and_reports_progress(tmp_path):
    rt, events = runtime(tmp_path)
    out = run(rt, f'(std.apply (obj.get B "seed_sweep") gen "a comet" {SMALL} 40 3)')
    assert (out["ok"], out["failed"]) == (3, 0)
    assert [r["seed"] for r in out["results"]] == [40, 41, 42]
    for r in out["results"]:
        assert r["params"]["prompt"] == "a comet"
        assert np.array_equal(r["image"].pixels, render("a comet", r["seed"], 64, 64))
    assert run(rt, f'(std.apply (obj.get B "seeds") (std.apply (obj.get B "seed_sweep") gen "a comet" {SMALL} 40 3))') \
        == [40, 41, 42]
    steps = [(e["step"], e["total"]) for e in events if e["type"] == "progress" and e["task"] == "batch.run"]
    assert steps[:3] == [(1, 3), (2, 3), (3, 3)]


def test_prompt_sweep_from_a_prompt_template(tmp_path):
    rt, _ = runtime(tmp_path)
    out = run(rt, '(std.apply (obj.get B "prompt_sweep") gen '
                  '(std.apply (obj.get B "prompts") "a {animal} at {time}" {"animal" ["cat" "owl"] "time" ["dawn" "dusk"]})'
                  ' {"width" 64 "height" 64 "steps" 1 "seed" 9})')
    prompts = [r["params"]["prompt"] for r in out["results"]]
    assert prompts == ["a cat at dawn", "a cat at dusk", "a owl at dawn", "a owl at dusk"]
    for r in out["results"]:
        assert r["seed"] == 9 and np.array_equal(r["image"].pixels, render(r["params"]["prompt"], 9, 64, 64))


def test_sweep_with_failures_in_the_middle_saves_the_rest(tmp_path):
    rt, _ = runtime(tmp_path)
    (tmp_path / "out").mkdir()
    out = run(rt, '(std.let r (std.apply (obj.get B "sweep") gen "textToImage" {"prompt" "x" "width" 64 "height" 64}'
                  ' {"steps" [1 5000 2] "seed" [3 4]} {"save" "out/s" "contact_sheet" true}))'
                  ' {"r" r "summary" (std.apply (obj.get B "summary") r) "failures" (std.apply (obj.get B "failures") r)'
                  '  "n" (list.len (std.apply (obj.get B "images") r))}')
    r = out["r"]
    assert [x["status"] for x in r["results"]] == ["ok", "ok", "error", "error", "ok", "ok"]
    assert [x["params"]["seed"] for x in r["results"]] == [3, 4, 3, 4, 3, 4]
    assert out["n"] == 4 and out["summary"] == ("4 ok, 2 failed (#3: diffusers.generate.textToImage: steps must be between 1 and 1000, got 5000)")
    assert [f["index"] for f in out["failures"]] == [2, 3] and "steps" in out["failures"][0]["error"]
    saved = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert saved == ["s-001.png", "s-002.png", "s-005.png", "s-006.png", "s-sheet.png"]
    assert read_metadata(tmp_path / "out/s-006.png")["seed"] == 4


def test_strength_sweep_runs_image_to_image(tmp_path):
    rt, _ = runtime(tmp_path)
    out = run(rt, '(std.apply (obj.get B "strength_sweep") gen (image.new 64 64 "white") "ink" [0.5 1]'
                  ' {"steps" 4 "seed" 1})')
    assert [r["params"]["strength"] for r in out["results"]] == [0.5, 1]
    assert np.array_equal(out["results"][1]["image"].pixels, render("ink", 1, 64, 64))
    half = out["results"][0]["image"].pixels.astype(float)
    expect = (255 * 0.5 + render("ink", 1, 64, 64).astype(float) * 0.5 + 0.5).astype(np.uint8)
    assert np.array_equal(half.astype(np.uint8), expect)


def test_each_runs_a_workflow_per_item_with_progress_and_interrupt(tmp_path):
    rt, events = runtime(tmp_path)
    code = ('(std.apply (obj.get B "each") [1 2 3]'
            ' (std.lambda (seed) (image.size (obj.get (std.call_method gen "textToImage" "x" '
            '  {"width" (* 64 seed) "height" 64 "steps" 1 "seed" seed}) "image"))) {"task" "lineup"})')
    out = run(rt, code)
    assert [r["value"] for r in out["results"]] == [[64, 64], [128, 64], [192, 64]]
    assert [(e["step"], e["total"]) for e in events if e.get("task") == "lineup"] == [(1, 3), (2, 3), (3, 3)]

    def stop_after_two(e):
        events.append(e)
        if e.get("task") == "lineup" and e["step"] == 2:
            rt.interrupt()

    events.clear()
    rt.on_event = stop_after_two
    with pytest.raises(InterruptedError_):  # not caught by each's continue_on_error
        run(rt, code)
    assert max(e["step"] for e in events if e.get("task") == "lineup") == 2


def test_sweeps_obey_the_grant_for_the_whole_batch(tmp_path):
    rt, _ = runtime(tmp_path, grants=[{"type": "diffusers.generate", "params": {"max_batch": 3, "max_compute": 0.1}}])
    with pytest.raises(CapabilityError, match="4 items exceed this grant's max_batch of 3"):
        run(rt, f'(std.apply (obj.get B "seed_sweep") gen "x" {SMALL} 1 4)')
    # 3 × 64×64×10 steps / 1e6 = 0.123 > 0.1: refused before the first item runs
    with pytest.raises(CapabilityError, match=r"total compute 0\.1229 of 3 items exceeds this grant's max_compute"):
        run(rt, '(std.apply (obj.get B "seed_sweep") gen "x" {"width" 64 "height" 64 "steps" 10} 1 3)')
    assert run(rt, '(obj.get (std.apply (obj.get B "seed_sweep") gen "x" {"width" 64 "height" 64 "steps" 8} 1 3) "ok")') == 3


def test_the_batch_seeds_example_gives_its_documented_result():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "batch_seeds.viwo"
    events: list[dict] = []
    rt = Runtime(roots=[path.parent], grants="default", canvas_size=(256, 256), on_event=events.append)
    out = rt.run(path.read_text(encoding="utf-8"), filename=str(path), args=["a kite", 7])
    assert out["seeds"] == "4 ok, 0 failed" and out["used"] == [7, 8, 9, 10]
    assert out["grid"] == ["a comet at dawn, watercolour", "a comet at midnight, watercolour",
                           "a lighthouse at dawn, watercolour", "a lighthouse at midnight, watercolour"]
    assert out["refined"] == ("2 ok, 1 failed (#3: diffusers.generate.textToImage: seed must be between 0 and "
                              "4294967295, got -1)")
    assert (out["sheet"].width, out["sheet"].height) == (4 * 260 + 4, 256 + 16 + 8)
    assert [e["step"] for e in events if e.get("task") == "refine"] == [1, 2, 3]
