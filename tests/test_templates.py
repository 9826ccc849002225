"""Templates (.viwo-template.json) and batch generation with seed variations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from viwoscript.errors import ArgumentError, CapabilityError, InterruptedError_
from viwoscript.io import read_metadata
from viwoscript.runtime import Runtime
from viwoscript.templates import (
    TemplateError,
    export_template,
    load_template_file,
    parse_template,
    template_from_script,
)

ORIGINAL = {  # what the original front end exported (no parameters)
    "id": "0b5c3a6e-2f7e-4a43-8f1e-6f5a3c2b1d00", "name": "comet", "description": "A comet",
    "script": ["std.seq", ["std.let", "x", 1], ["+", ["std.var", "x"], 2]],
    "created": 1718000000000, "metadata": {"version": "1.0", "tags": ["night"]},
}


def test_original_format_imports_and_round_trips(tmp_path):
    t = parse_template(ORIGINAL, runtime=Runtime())
    assert (t.id, t.name, t.created, t.metadata["tags"], t.parameters) == (ORIGINAL["id"], "comet", 1718000000000,
                                                                          ["night"], [])
    p = export_template(t, tmp_path)
    assert p.name == "comet.viwo-template.json"
    back = load_template_file(p, check=Runtime().check)
    assert back.to_json() == t.to_json()
    assert Runtime().run(back.script) == 3


def test_parameters_bind_by_position_and_name():
    t = template_from_script("greet", '(str.concat (std.arg 0) " x" (std.string (std.arg 1)))', runtime=Runtime(),
                             parameters=[{"name": "prompt", "type": "string", "default": "a cat"},
                                         {"name": "n", "type": "integer", "default": 2}])
    assert t.script[0] == "str.concat"  # stored in JSON form
    rt = Runtime()
    assert rt.run(t.script, args=t.bind(None)) == "a cat x2"
    assert rt.run(t.script, args=t.bind({"n": "5"})) == "a cat x5"  # --arg n=5 arrives as text
    assert rt.run(t.script, args=t.bind(["a dog"])) == "a dog x2"
    with pytest.raises(ArgumentError, match="unknown parameter 'size'"):
        t.bind({"size": 3})
    with pytest.raises(ArgumentError, match="parameter 'n' expects a integer"):
        t.bind({"n": "many"})
    req = template_from_script("r", "(std.arg 0)", parameters=[{"name": "p", "type": "string"}], check=False)
    with pytest.raises(ArgumentError, match="missing required parameter 'p'"):
        req.bind({})


@pytest.mark.parametrize("data, where", [
    ("{not json", "line 1 column 2: not valid JSON"),
    ("[1, 2]", "template: expected a JSON object, got list"),
    ({"name": "x"}, "template.script: missing (required)"),
    ({"name": "two\nlines", "script": 1}, "template.name: a name may not hold control characters"),
    ({"name": " padded", "script": 1}, "template.name: a name may not start or end with a space"),
    ({"name": "x" * 101, "script": 1}, "template.name: a name has at most 100 characters"),
    ({"name": "x", "script": 1, "colour": "red"}, "template.colour: unknown field"),
    ({"name": "x", "script": 1, "created": "yesterday"}, "template.created: expected milliseconds"),
    ({"name": "x", "script": 1, "metadata": {"tags": ["a", 3]}}, "template.metadata.tags[1]: expected a string"),
    ({"name": "x", "script": 1, "metadata": {"thumbnail": "http://x/y.png"}}, "template.metadata.thumbnail"),
    ({"name": "x", "script": 1, "parameters": [{"name": "a"}, {"name": "a"}]},
     "template.parameters[1].name: duplicate parameter 'a'"),
    ({"name": "x", "script": 1, "parameters": [{"name": "a", "type": "colour"}]},
     "template.parameters[0].type: expected one of"),
    ({"name": "x", "script": 1, "parameters": [{"name": "a", "type": "number", "default": "big"}]},
     "template.parameters[0].default: expected a number"),
    ({"name": "x", "script": ["no.such_op", 1]}, "template.script: 1 error(s): Unknown opcode: no.such_op"),
    ({"name": "x", "script": "(+ 1"}, "template.script: 1 error(s)"),
])
def test_malformed_templates_get_precise_errors(tmp_path, data, where):
    path = tmp_path / "bad.viwo-template.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_template_file(path, runtime=Runtime())
    assert info.value.message.startswith("template import: bad.viwo-template.json: ")
    assert where in info.value.message


# --- batch ---------------------------------------------------------------------------------------------

def events_runtime(tmp_path, grants="default"):
    events: list[dict] = []
    rt = Runtime(roots=[tmp_path], grants=grants, on_event=events.append)
    return rt, events


def test_batch_seed_variations_save_and_contact_sheet(tmp_path):
    rt, events = events_runtime(tmp_path)
    (tmp_path / "out").mkdir()
    out = rt.run('(batch.run (get_capability "diffusers.generate") "textToImage" '
                 '{"prompt" "a comet" "width" 64 "height" 64 "steps" 2} (batch.seeds 5 3) '
                 '{"save" "out/comet" "contact_sheet" {"columns" 2}})')
    assert (out["ok"], out["failed"]) == (3, 0)
    assert [r["seed"] for r in out["results"]] == [5, 6, 7]
    assert [r["path"] for r in out["results"]] == ["out/comet-001.png", "out/comet-002.png", "out/comet-003.png"]
    progress = [e for e in events if e["type"] == "progress" and e["task"] == "batch.run"]
    assert [(e["step"], e["total"]) for e in progress] == [(1, 3), (2, 3), (3, 3)]
    info = read_metadata(tmp_path / "out/comet-002.png")
    assert info["seed"] == 6 and info["prompt"] == "a comet" and info["viwo"]["batch"]["index"] == 1
    sheet = out["sheet"]
    assert sheet.width == 2 * 260 + 4 and sheet.height == 2 * (256 + 16 + 4) + 4
    assert (tmp_path / out["sheet_path"]).exists()
    # the same seed gives the same pixels as a single call
    single = rt.run('(obj.get (std.call_method (get_capability "diffusers.generate") "textToImage" "a comet" '
                    '{"width" 64 "height" 64 "steps" 2 "seed" 6}) "image")')
    assert np.array_equal(single.pixels, out["results"][1]["image"].pixels)


def test_batch_continues_after_failures_in_the_middle(tmp_path):
    rt, _ = events_runtime(tmp_path)
    out = rt.run('(batch.run (get_capability "diffusers.generate") "textToImage" {"width" 64 "height" 64 "steps" 1}'
                 ' (batch.product {"prompt" ["ok" "ok too"] "steps" [1 5000]}))')
    statuses = [r["status"] for r in out["results"]]
    assert statuses == ["ok", "error", "ok", "error"]
    assert "steps" in out["results"][1]["error"] and out["results"][1]["image"] is None
    assert (out["ok"], out["failed"]) == (2, 2)
    with pytest.raises(ArgumentError, match="steps must be between 1 and 1000"):
        rt.run('(batch.run (get_capability "diffusers.generate") "textToImage" {"prompt" "x" "width" 64 "height" 64}'
               ' [{"steps" 5000} {"steps" 1}] {"continue_on_error" false})')


def test_batch_respects_max_batch_for_the_whole_batch(tmp_path):
    rt, _ = events_runtime(tmp_path, grants=[{"type": "diffusers.generate", "params": {"max_batch": 2}}])
    with pytest.raises(CapabilityError, match="3 items exceed this grant's max_batch of 2"):
        rt.run('(batch.run (get_capability "diffusers.generate") "textToImage" {"prompt" "x"} [1 2 3])')


def test_batch_interrupt_stops_the_whole_batch(tmp_path):
    rt, events = events_runtime(tmp_path)

    def on_event(e):
        events.append(e)
        if e.get("task") == "batch.run" and e["step"] == 2:
            rt.interrupt()

    rt.on_event = on_event
    with pytest.raises(InterruptedError_):
        rt.run('(batch.run (get_capability "diffusers.generate") "textToImage" '
               '{"prompt" "x" "width" 64 "height" 64 "steps" 1} (batch.seeds 1 6))')
    assert max(e["step"] for e in events if e.get("task") == "batch.run") == 2


def test_templates_build_no_runtime_the_caller_passes_the_check():
    # design §14: templates.py is on the script floor; the static check comes from the caller
    with pytest.raises(TypeError, match="check=runtime.check"):
        parse_template(ORIGINAL)
    seen = []
    t = parse_template(ORIGINAL, check=lambda script: seen.append(script) or [])
    assert seen == [ORIGINAL["script"]] and t.name == "comet"
    assert parse_template({"name": "x", "script": ["no.such_op"]}, check=False).script == ["no.such_op"]


@pytest.mark.parametrize("name", ["Mon portrait ✨ v2", "9 lives", "ポートレート", "a/b\\c: d?", "../../etc/passwd",
                                  "Robert'); DROP TABLE templates;--"])
def test_free_text_names_are_data_never_paths(tmp_path, name):
    from viwoscript.store import Store
    from viwoscript.templates import export_template, load_template_file, stored_template, template_filename

    store = Store(tmp_path / "store")
    t = template_from_script(name, "(+ 1 2)", description="free text", check=False)
    store.save_template(t)
    back = stored_template(store, name)
    assert back.name == name and [x["name"] for x in store.list_templates()] == [name]
    out = tmp_path / "out"
    out.mkdir()
    path = export_template(back, out)
    assert path.parent == out and path.name == template_filename(name) and path.name.endswith(".viwo-template.json")
    assert [p.name for p in out.iterdir()] == [path.name]  # one file, right here, whatever the name says
    again = load_template_file(path, check=False)
    assert again.name == name and again.script == back.script
    assert store.delete_template(name) and store.list_templates() == []


def test_template_filename_keeps_letters_and_drops_what_file_systems_refuse():
    from viwoscript.templates import template_filename

    assert template_filename("Mon portrait ✨ v2") == "Mon portrait ✨ v2.viwo-template.json"
    assert template_filename("a/b\\c:d*?\"<>|e") == "a_b_c_d_e.viwo-template.json"
    assert template_filename("..") == "template.viwo-template.json"
    assert len(template_filename("é" * 100).encode()) <= 220
