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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viwoscript.errors import ArgumentError, CapabilityError, ScriptError
from viwoscript.runtime import Runtime
from viwoscript.store import Store
from viwoscript.templates import TemplateError, parse_template, stored_template, template_from_script
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
        t = template_from_script("comet", "(+ 1 (std.arg 0))", parameters=[{"name": "n", "type": "number", "default": 1}],
                                 runtime=Runtime())
        s.save_template(t)
        with pytest.raises(ScriptError, match="already exists"):
            s.save_template(t)
        back = stored_template(s, "comet")
        assert back.to_json() == t.to_json()
        assert s.template_data("comet") == t.to_json()  # the store keeps JSON data, knows no Template
        assert Runtime().run(back.script, args=back.bind({"n": 4})) == 5
        assert [d["name"] for d in s.list_templates()] == ["comet"]
        assert s.delete_template("comet") and s.list_templates() == []
        with pytest.raises(ScriptError, match="no template named 'comet'"):
            stored_template(s, "comet")
        refused = {"name": "bad", "script": ["no.such_op"]}
        with pytest.raises(TemplateError, match="Unknown opcode: no.such_op"):  # the caller's check callable
            s.save_template(refused, check=lambda data: parse_template(data, check=Runtime().check))
        assert s.list_templates() == []


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


# --- damaged and missing stores (issue 13 item 5) --------------------------------------------------------

def _damaged_stores(tmp_path):
    """A store of random bytes, a truncated one, and a store path that is a file."""
    rnd = tmp_path / "random"
    rnd.mkdir()
    (rnd / "store.sqlite3").write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes())
    good = tmp_path / "good"
    with Store(good) as s:
        for i in range(200):
            s.save_image(img((i, 0, 0, 255), meta={"pad": "x" * 400}), f"n{i}")
        t = template_from_script("t", "(+ 1 2)", check=False)
        s.save_template(t)
    data = (good / "store.sqlite3").read_bytes()
    trunc = tmp_path / "truncated"
    trunc.mkdir()
    (trunc / "store.sqlite3").write_bytes(data[: len(data) // 3])
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    return {"random": rnd, "truncated": trunc, "file": afile}


def test_damaged_store_errors_name_the_file_in_the_api_and_the_opcodes(tmp_path):
    for kind, root in _damaged_stores(tmp_path).items():
        where = str(root) if kind == "file" else str(root / "store.sqlite3")
        what = "is a file, not a store folder" if kind == "file" else "is damaged or not a viwoscript store"
        with pytest.raises(ScriptError) as info:
            with Store(root) as s:
                s.list()
                s.template_data("t")
        assert where in info.value.message and what in info.value.message and info.value.hint, kind
        for script in ('(entity.list)', '(entity.get "abcd1234")', '(entity.save (image.new 2 2 "red") "x")',
                       '(entity.delete "abcd")'):
            rt = Runtime(store=root)
            with pytest.raises(ScriptError) as info:  # a located ViwoError, never an InternalError
                rt.run(script)
            assert type(info.value).__name__ == "StoreError" and info.value.span is not None, (kind, script)
            assert where in info.value.message, (kind, script)


def test_damaged_store_errors_in_the_cli(tmp_path):
    from click.testing import CliRunner

    from viwoscript.cli import cli

    runner = CliRunner()
    for kind, root in _damaged_stores(tmp_path).items():
        for args in (["images", "list"], ["images", "show", "abcd"], ["template", "list"],
                     ["template", "export", "t"], ["images", "rm", "abcd"]):
            res = runner.invoke(cli, [*args, "--store", str(root)])
            assert res.exit_code in (1, 2) and res.exception is None or isinstance(res.exception, SystemExit), res.output
            assert "Traceback" not in res.output and str(root) in res.output, (kind, args, res.output)
            if kind != "file":
                assert "is damaged or not a viwoscript store" in res.output and "hint:" in res.output


def test_run_template_with_a_damaged_default_store(tmp_path):
    (tmp_path / "viwoscript" / "store").mkdir(parents=True)
    (tmp_path / "viwoscript" / "store" / "store.sqlite3").write_bytes(b"\x00garbage" * 1000)
    (tmp_path / "e.viwo").write_text('(entity.get "abcd")')
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "PYTHONPATH": os.getcwd()}
    for target in ("template:sweep", str(tmp_path / "e.viwo")):
        res = subprocess.run([sys.executable, "-m", "viwoscript", "run", target], capture_output=True, text=True,
                             env=env, cwd=tmp_path)
        assert res.returncode == 1, res.stderr
        assert "store.sqlite3 is damaged" in res.stderr and "Traceback" not in res.stderr
        assert "InternalError" not in res.stderr and "internal error" not in res.stderr


def test_a_lost_or_damaged_image_file_is_a_store_error_naming_it(tmp_path):
    from click.testing import CliRunner

    from viwoscript.cli import cli

    with Store(tmp_path / "s") as s:
        a = s.save_image(img((1, 2, 3, 255)), "lost")
        b = s.save_image(img((4, 5, 6, 255)), "damaged")
        s.blob_path(a["blob"]).unlink()
        s.blob_path(b["blob"]).write_bytes(b"not a png")
        pa, pb = s.blob_path(a["blob"]), s.blob_path(b["blob"])
    rt = Runtime(store=tmp_path / "s")
    for rec, path, what in ((a, pa, "is missing"), (b, pb, "cannot be read as an image")):
        with pytest.raises(ScriptError) as info:
            rt.run(f'(std.call_method (entity.get "{rec["id"]}") "image")')
        assert f"{path} {what}" in info.value.message and "verify" in info.value.hint and info.value.span
        res = CliRunner().invoke(cli, ["images", "show", "--store", str(tmp_path / "s"), rec["id"][:8]])
        assert res.exit_code == 1 and f"{path} {what}" in res.output and "Traceback" not in res.output


def test_a_missing_store_is_created_only_when_written_to(tmp_path):
    from click.testing import CliRunner

    from viwoscript.cli import cli

    runner = CliRunner()
    missing = tmp_path / "no" / "such" / "store"
    for args in (["images", "list"], ["template", "list"], ["images", "show", "abcd"]):
        res = runner.invoke(cli, [*args, "--store", str(missing)])
        assert res.exit_code == 1 and f"store: {missing} does not exist" in res.output and "hint:" in res.output
    (tmp_path / "t.viwo").write_text("(+ 1 2)")
    res = runner.invoke(cli, ["template", "save", "--store", str(missing), "t", str(tmp_path / "t.viwo")])
    assert res.exit_code == 1 and "its parent folder" in res.output and "mkdir -p" in res.output
    assert not (tmp_path / "no").exists()  # nothing created, not even the parents
    new = tmp_path / "new"
    res = runner.invoke(cli, ["template", "save", "--store", str(new), "t", str(tmp_path / "t.viwo")])
    assert res.exit_code == 0 and f"created a new store in {new}" in res.output
    assert (new / "store.sqlite3").exists()
    # reading a store that does not exist yet creates nothing; a Runtime says when its first write creates one
    events = []
    rt = Runtime(store=tmp_path / "lazy", on_event=events.append)
    assert rt.run("(entity.list)") == [] and rt.run('(entity.get "abcd")') is None
    assert not (tmp_path / "lazy").exists()
    rt.run('(entity.save (image.new 2 2 "red") "x")')
    assert (tmp_path / "lazy" / "store.sqlite3").exists()
    assert any("created a new store" in e.get("message", "") for e in events)


# --- entity ids: unique prefixes, like git (issue 13 item 11) ----------------------------------------------

def test_entity_ids_accept_unique_prefixes_everywhere(tmp_path):
    from click.testing import CliRunner

    from viwoscript.cli import cli

    root = tmp_path / "s"
    with Store(root) as s:
        a = s.save_image(img((255, 0, 0, 255)), "red square", id="45d79708-aaaa-4000-8000-000000000001")
        s.save_image(img((0, 255, 0, 255)), "green", id="45d7f000-bbbb-4000-8000-000000000002")
        s.save_image(img((0, 0, 255, 255)), "blue", id="45d7f001-cccc-4000-8000-000000000003")
        assert s.resolve("45d79708", "t") == a["id"] and s.find(a["id"], "t")["name"] == "red square"
        assert s.resolve("45d", "t") is None  # shorter than MIN_PREFIX: whole ids only
        assert s.resolve("ffff", "t") is None
        with pytest.raises(ArgumentError) as info:
            s.resolve("45d7f", "entity.get")
        assert "ambiguous" in info.value.message and "45d7f000-bbbb" in info.value.hint and "(blue)" in info.value.hint
    rt = Runtime(store=root)
    shown = repr(rt.run('(entity.get "45d79708")'))
    assert shown == "<entity red square 45d79708>"  # how the REPL and `viwo run` show a handle
    short = shown.split()[-1].rstrip(">")
    assert rt.run(f'(std.call_method (entity.get "{short}") "name")') == "red square"
    with pytest.raises(ArgumentError, match="ambiguous"):
        rt.run('(entity.get "45d7f")')
    runner = CliRunner()
    res = runner.invoke(cli, ["images", "show", "--store", str(root), short])
    assert res.exit_code == 0 and '"name": "red square"' in res.output, res.output
    res = runner.invoke(cli, ["images", "show", "--store", str(root), "45d7f"])
    assert res.exit_code == 1 and "ambiguous" in res.output and "45d7f001-cccc" in res.output
    res = runner.invoke(cli, ["images", "show", "--store", str(root), "0000dead"])
    assert res.exit_code == 1 and "no entity with id 0000dead\n" in res.output  # quoted once, not '"…"'
    assert "viwo images list" in res.output
    res = runner.invoke(cli, ["images", "export", "--store", str(root), "45d7f000", str(tmp_path)])
    assert res.exit_code == 0 and (tmp_path / "green.png").exists()
    res = runner.invoke(cli, ["images", "rm", "--store", str(root), "45d7f001"])
    assert res.exit_code == 0 and "deleted 45d7f001-cccc-4000-8000-000000000003" in res.output
    assert rt.run('(entity.delete "45d7f")') is True  # unique again now
    assert [r["name"] for r in rt.run("(entity.list)")] == ["red square"]
    assert [r["name"] for r in rt.run('(entity.list {"search" "45d797"})')] == ["red square"]  # id prefix
    assert rt.run('(entity.list {"search" "aaaa-4000"})') == []  # ids match by their beginning only
    res = runner.invoke(cli, ["images", "list", "--store", str(root), "--search", "45d79"])
    assert res.exit_code == 0 and "red square" in res.output


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.sampled_from("ab\u00e9\U0010fffd\U0010ffff"), min_size=1, max_size=7), min_size=1,
                max_size=8, unique=True),
       st.text(st.sampled_from("ab\u00e9\U0010fffd\U0010ffff"), min_size=1, max_size=7))
def test_prefix_resolution_matches_startswith(tmp_path, ids, ref):
    # the SQL range lookup agrees with str.startswith for any ids, non-ASCII and U+10FFFF included
    import tempfile

    root = tempfile.mkdtemp(dir=tmp_path)  # a fresh store for every example
    with Store(root) as s:
        for i, eid in enumerate(ids):
            s.save_image(img((i, 0, 0, 255)), f"n{i}", id=eid)
        matches = [e for e in ids if e.startswith(ref)]
        if ref in ids:
            assert s.resolve(ref, "t") == ref
        elif len(ref) < 4 or not matches:
            assert s.resolve(ref, "t") is None
        elif len(matches) == 1:
            assert s.resolve(ref, "t") == matches[0]
        else:
            with pytest.raises(ArgumentError, match="ambiguous"):
                s.resolve(ref, "t")
