"""The SQLite entity store: records, content-addressed blobs, entity handles, templates, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from viwoscript.errors import CapabilityError, ScriptError
from viwoscript.runtime import Runtime
from viwoscript.store import Store
from viwoscript.templates import template_from_script
from viwoscript.values import Image


def img(color, w=4, h=3, meta=None):
    px = np.zeros((h, w, 4), np.uint8)
    px[...] = color
    return Image(px, meta)


def test_entities_round_trip_and_content_addressing(tmp_path):
    with Store(tmp_path / "s") as s:
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        a = s.save_image(img((255, 0, 0, 255), meta={"seed": 1}), "red", owner="ada", metadata={"tag": "x"})
        b = s.save_image(img((255, 0, 0, 255)), "red again")
        assert a["blob"] == b["blob"] and len(list((tmp_path / "s/blobs").glob("*/*.png"))) == 1
        assert a["metadata"] == {"seed": 1, "tag": "x"} and a["owner"] == "ada"
        assert np.array_equal(s.read_blob(a["blob"]).pixels, img((255, 0, 0, 255)).pixels)
        assert [r["name"] for r in s.list(search="again")] == ["red again"]
        assert [r["name"] for r in s.list(search='"tag"')] == ["red"]
        assert [r["name"] for r in s.list(search="%")] == []  # LIKE wildcards are literal
        assert s.delete(b["id"]) and not s.delete(b["id"])
        s.update_image(a["id"], img((0, 0, 255, 255)))
        assert s.gc() == 1  # the red blob no entity uses
        assert s.verify() == []


def test_entity_handle_verbs_and_ownership(tmp_path):
    rt = Runtime()
    rt.store = Store(tmp_path / "s")
    rt.principal = "ada"
    e = rt.run('(entity.save (image.with_metadata (image.new 4 2 "red") {"seed" 3}) "comet" {"note" "hi"})')
    eid = e.id
    assert rt.run(f'(std.call_method (entity.get "{eid}") "view")')["width"] == 4
    assert rt.run(f'(std.call_method (entity.get "{eid}") "get_metadata")') == {"seed": 3, "note": "hi"}
    assert rt.run(f'(std.call_method (entity.get "{eid}") "get_data")').startswith("data:image/png;base64,")
    rt.run(f'(std.call_method (entity.get "{eid}") "transform" {{"rotate" 90}})')
    assert rt.run(f'(image.size (std.call_method (entity.get "{eid}") "image"))') == [2, 4]
    rt.run(f'(std.call_method (entity.get "{eid}") "filter" "invert")')
    assert rt.run(f'(image.pixel (std.call_method (entity.get "{eid}") "image") 0 0)') == [0, 255, 255, 255]
    rt.run(f'(std.call_method (entity.get "{eid}") "composite" (image.new 1 1 "black") {{"x" 1 "y" 1}})')
    assert rt.run(f'(image.pixel (std.call_method (entity.get "{eid}") "image") 1 1)') == [0, 0, 0, 255]
    assert rt.run(f'(std.call_method (entity.get "{eid}") "update_metadata" {{"note" null "k" 1}})') == {"seed": 3, "k": 1}
    assert [r["name"] for r in rt.run('(entity.list {"mine" true})')] == ["comet"]
    with pytest.raises(Exception, match="has no callable method"):
        rt.run(f'(std.call_method (entity.get "{eid}") "_writable" "x")')
    other = Runtime()
    other.store, other.principal = rt.store, "bob"
    with pytest.raises(CapabilityError, match="belongs to ada"):
        other.run(f'(std.call_method (entity.get "{eid}") "update_metadata" {{"k" 2}})')
    with pytest.raises(CapabilityError, match="belongs to ada"):
        other.run(f'(entity.delete "{eid}")')
    assert rt.run(f'(entity.delete "{eid}")') is True
    assert rt.run(f'(entity.get "{eid}")') is None


def test_templates_in_the_store(tmp_path):
    with Store(tmp_path / "s") as s:
        t = template_from_script("comet", "(+ 1 (std.arg 0))", parameters=[{"name": "n", "type": "number", "default": 1}])
        s.save_template(t)
        with pytest.raises(ScriptError, match="already exists"):
            s.save_template(t)
        back = s.load_template("comet")
        assert back.to_json() == t.to_json()
        assert Runtime().run(back.script, args=back.bind({"n": 4})) == 5
        assert [d["name"] for d in s.list_templates()] == ["comet"]
        assert s.delete_template("comet") and s.list_templates() == []


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from viwoscript.store import Store
    from viwoscript.values import Image
    s = Store(sys.argv[1])
    i = int(sys.argv[2])
    while True:
        px = np.full((32, 32, 3), i % 256, np.uint8)
        px[0, 0] = [i % 251, i % 241, i % 239]
        rec = s.save_image(Image(px, {"i": i}), f"item-{i}")
        s.update_metadata(rec["id"], {"done": True})
        print(rec["id"], i, flush=True)
        i += 1
""")


@pytest.mark.slow
def test_killing_a_writer_never_loses_committed_rows_or_corrupts(tmp_path):
    root = tmp_path / "s"
    Store(root).close()
    committed: dict[str, int] = {}
    i = 0
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for round_ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(i)], stdout=subprocess.PIPE,
                                text=True, env=env)
        time.sleep(0.4 + 0.07 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        for line in out.splitlines():
            eid, n = line.split()
            committed[eid] = int(n)
            i = max(i, int(n) + 1)
        i += 1000  # a fresh range: a half-written item of the killed writer never collides
    assert len(committed) > 12
    with Store(root) as s:
        assert s.verify() == []
        rows = {r["id"]: r for r in s.list(limit=100_000)}
        for eid, n in committed.items():  # every row the writer saw committed is there, complete
            assert eid in rows and rows[eid]["metadata"] == {"i": n, "done": True}
            px = s.read_blob(rows[eid]["blob"]).pixels
            assert px[1, 1, 0] == n % 256 and tuple(px[0, 0]) == (n % 251, n % 241, n % 239)
        for r in rows.values():  # rows the writer did not report: complete too (killed before printing)
            assert r["name"] == f"item-{r['metadata']['i']}"
        s.gc()
        assert s.verify() == []


def test_cli_workflow_commands(tmp_path):
    import json as _json

    from click.testing import CliRunner

    from viwoscript.cli.commands.images import images
    from viwoscript.cli.commands.info import info
    from viwoscript.cli.commands.template import template
    from viwoscript.io import write_image
    from viwoscript.terminal.loader import template_script

    store = str(tmp_path / "s")
    runner = CliRunner()
    write_image(img((0, 128, 255, 255), meta={"prompt": "a comet", "seed": 5}), tmp_path / "a.png",
                script="(+ 1 2)", args=[1])
    res = runner.invoke(info, [str(tmp_path / "a.png")])
    assert res.exit_code == 0 and "prompt: a comet" in res.output and "seed: 5" in res.output
    assert "script: (+ 1 2)" in res.output
    assert _json.loads(runner.invoke(info, ["--json", str(tmp_path / "a.png")]).output)["seed"] == 5
    assert runner.invoke(info, [str(tmp_path / "nope.png")]).exit_code == 2  # a missing file: usage error
    with Store(store) as s:
        rec = s.save_image(img((1, 2, 3, 255), meta={"seed": 9}), "comet")
    res = runner.invoke(images, ["list", "--store", store])
    assert res.exit_code == 0 and rec["id"] in res.output and "seed=9" in res.output
    assert _json.loads(runner.invoke(images, ["show", "--store", store, rec["id"]]).output)["width"] == 4
    res = runner.invoke(images, ["export", "--store", store, rec["id"], str(tmp_path)])
    assert res.exit_code == 0 and (tmp_path / "comet.png").exists()
    assert runner.invoke(images, ["rm", "--store", store, rec["id"]]).exit_code == 0
    assert runner.invoke(images, ["show", "--store", store, rec["id"]]).exit_code == 1
    (tmp_path / "t.viwo").write_text("(+ (std.arg 0) 1)")
    res = runner.invoke(template, ["save", "--store", store, "inc", str(tmp_path / "t.viwo"), "--param", "n:number=41"])
    assert res.exit_code == 0, res.output
    assert "inc" in runner.invoke(template, ["list", "--store", store]).output
    exported = runner.invoke(template, ["export", "--store", store, "inc"]).output
    (tmp_path / "inc.viwo-template.json").write_text(exported)
    assert runner.invoke(template, ["rm", "--store", store, "inc"]).exit_code == 0
    assert runner.invoke(template, ["import", "--store", store, str(tmp_path / "inc.viwo-template.json")]).exit_code == 0
    script, args = template_script("template:inc", store, {"n": "1"})
    assert Runtime().run(script, args=args) == 2
    (tmp_path / "bad.viwo-template.json").write_text('{"name": "b", "script": ["nope.op"]}')
    res = runner.invoke(template, ["import", "--store", store, str(tmp_path / "bad.viwo-template.json")])
    assert res.exit_code == 1 and "Unknown opcode: nope.op" in res.output
