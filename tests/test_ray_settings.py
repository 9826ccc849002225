"""The executor choice and batch items as travelling data (issue 19) — no Ray needed.

Items go through a *loopback* dispatcher here: each one is packed exactly as for Ray, then run on a second,
fresh Runtime in this process (so what travels, and what cannot, is tested in milliseconds); the Ray
cluster itself is tested in tests/test_ray.py (slow)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from viwoscript.config import ConfigError, load_config
from viwoscript.errors import ScriptError, ViwoError
from viwoscript.executors.settings import executor_config
from viwoscript.runtime import Runtime
from viwoscript.travel import error_from_record, error_record, item_scope, read_names


class Loopback:
    """Sends items nowhere: runs each on its own fresh Runtime, as a Ray worker would."""

    dispatches_items = True

    def __init__(self, **runtime_kw):
        self.kw = runtime_kw
        self.items: list = []

    def run_items(self, ev, items, *, stop_on_error=False, on_done=None):
        out = []
        for k, item in enumerate(items):
            self.items.append(item)
            rt = Runtime(**self.kw)
            try:
                value = rt.run(item.script, args=item.args, scope=item_scope(rt, item))
                o = {"status": "ok", "value": value}
            except ViwoError as e:
                o = {"status": "error", "error": error_record(e)}
            out.append(o)
            if on_done:
                on_done(k, o)
        return out


B = '(std.let B (std.import "batch"))'


def both(code: str, **kw):
    kw.setdefault("grants", "default")
    loop = Loopback(**kw)
    return Runtime(**kw).run(code), Runtime(executor=loop, **kw).run(code), loop


def test_each_through_a_dispatcher_gives_what_it_gives_here():
    code = f'''(std.seq {B} (std.let k 10)
      (std.apply (obj.get B "each") [1 2 3 4]
        (std.lambda (x i) (std.if (== (% x 2) 0) (std.throw (str.concat "even " (std.string x))) (+ (* x k) i)))))'''
    local, remote, loop = both(code)
    assert remote == local
    assert local["failed"] == 2 and local["results"][1]["error"] == "even 2"
    assert len(loop.items) == 4 and loop.items[0].captures["__fn"].captures == {"k": 10}


def test_only_the_variables_the_lambda_reads_travel():
    code = f'''(std.seq {B} (std.let big (batch.seeds 0 1000)) (std.let n 3) (std.let unused "x")
      (obj.get (std.apply (obj.get B "each") [1] (std.lambda (x) (+ x n))) "results"))'''
    local, remote, loop = both(code)
    assert remote == local and remote[0]["value"] == 4
    assert set(loop.items[0].captures["__fn"].captures) == {"n"}


def test_captured_lambdas_travel_with_their_own_captures_and_may_recurse():
    code = f'''(std.seq {B} (std.let base 100)
      (std.let fact (std.lambda (n) (std.if (<= n 1) base (* n (std.apply fact (- n 1))))))
      (list.map (obj.get (std.apply (obj.get B "each") [3 4] (std.lambda (x) (std.apply fact x))) "results")
        (std.lambda (r) (obj.get r "value"))))'''
    local, remote, _ = both(code)
    assert remote == local == [600, 2400]


def test_a_captured_list_is_copied_changes_stay_with_the_item():
    code = f'''(std.seq {B} (std.let seen [])
      (std.apply (obj.get B "each") [1 2] (std.lambda (x) (list.push seen x)))
      seen)'''
    local, remote, _ = both(code)
    assert local == [1, 2] and remote == []  # documented in docs/distributed.md


def test_a_capture_that_cannot_travel_is_a_located_error_naming_it(tmp_path):
    code = f'''(std.seq {B} (std.let ent (entity.save (image.new 4 4) "x"))
      (std.apply (obj.get B "each") [1]
        (std.lambda (x) (obj.get ent "name"))))'''
    rt = Runtime(grants="default", store=str(tmp_path), executor=Loopback(grants="default"))
    with pytest.raises(ScriptError) as info:
        rt.run(code, filename="s.viwo")
    e = info.value
    assert "captures 'ent', an entity, which cannot be sent to another worker" in e.message
    assert e.span.file == "s.viwo" and e.span.line == 3 and e.hint


def test_a_name_that_is_only_declared_inside_is_not_a_capture(tmp_path):
    code = f'''(std.seq {B} (std.let ent (entity.save (image.new 4 4) "x"))
      (obj.get (std.apply (obj.get B "each") [1] (std.lambda (x) (std.seq (std.let ent x) (+ ent 1)))) "ok"))'''
    rt = Runtime(grants="default", store=str(tmp_path), executor=Loopback(grants="default"))
    assert rt.run(code) == 1


def test_images_and_capabilities_travel_and_the_grant_is_the_same():
    code = f'''(std.seq {B}
      (std.let gen (delegate (get_capability "diffusers.generate") {{"max_steps" 3}}))
      (std.let first (obj.get (std.call_method gen "textToImage" "a" {{"width" 64 "height" 64 "steps" 2 "seed" 4}}) "image"))
      (obj.get (std.apply (obj.get B "each") [2 5]
        (std.lambda (n) (obj.get (std.call_method gen "imageToImage" first "b"
          {{"steps" n "seed" 1 "strength" 1}}) "image"))) "results"))'''
    local, remote, _ = both(code)
    assert [r["status"] for r in remote] == [r["status"] for r in local] == ["ok", "error"]
    assert remote[1]["error"] == local[1]["error"]
    assert np.array_equal(remote[0]["value"].pixels, local[0]["value"].pixels)


def test_batch_run_items_are_checked_here_and_only_the_good_ones_sent():
    code = '''(batch.run (get_capability "diffusers.generate") "textToImage" {"prompt" "x" "width" 64 "height" 64}
      [{"seed" 1 "steps" 2} {"seed" 2 "steps" 99} {"seed" 3 "steps" 2}])'''
    kw = {"grants": [{"type": "diffusers.generate", "params": {"max_steps": 4}}]}
    local, remote, loop = both(code, **kw)
    assert [r["status"] for r in remote["results"]] == ["ok", "error", "ok"]
    assert remote["results"][1]["error"] == local["results"][1]["error"]
    assert len(loop.items) == 2
    for a, b in zip(local["results"], remote["results"], strict=True):
        assert (a["image"] is None) == (b["image"] is None)
        if a["image"] is not None:
            assert np.array_equal(a["image"].pixels, b["image"].pixels)


def test_without_continue_on_error_the_first_failure_is_raised():
    code = f'''(std.seq {B} (std.apply (obj.get B "each") [1 2] (std.lambda (x) (std.throw "no")) {{"continue_on_error" false}}))'''
    with pytest.raises(ScriptError, match="no"):
        Runtime(executor=Loopback()).run(code)


def test_read_names_sees_reads_assignments_and_declarations():
    rt = Runtime()
    tree = rt.parse('(std.seq (std.let a 1) (std.set b 2) (+ c (std.lambda (d) d)) (std.var (str.concat "x" "y")))')
    used, bound, dynamic = read_names(tree)
    assert {"b", "c", "d"} <= used and {"a", "d"} <= bound and dynamic


def test_errors_travel_with_class_and_position():
    rt = Runtime()
    with pytest.raises(ViwoError) as info:
        rt.run("(+ 1\n (std.throw \"boom\"))", filename="f.viwo")
    again = error_from_record(error_record(info.value))
    assert type(again) is type(info.value) and again.message == "boom" and again.span == info.value.span


def test_model_affinity_prefers_a_worker_that_holds_the_model():
    from viwoscript.executors.ray import _Pool

    pool = _Pool(3)
    for w in (0, 1, 2):
        assert pool.take() == w
    pool.give(0, ["sd15"])
    pool.give(1, ["sdxl"])
    pool.give(2, [])
    assert pool.take("sdxl") == 1  # the worker that holds it
    assert pool.take("flux") == 2  # nobody holds it: a worker holding nothing (the others stay warm)
    assert pool.take("flux") == 0  # only one left
    assert pool.take("sdxl") is None
    pool.give(1)  # models unchanged
    assert pool.take("sd15", avoid={1}) == 1  # nothing else is free: the avoided worker rather than none


# --- configuration ----------------------------------------------------------------------------------

def config(tmp_path, text: str):
    (tmp_path / "viwo.toml").write_text(text)
    return load_config(tmp_path / "viwo.toml")


def test_executor_config_defaults_and_values(tmp_path):
    assert executor_config(None).kind == "local"
    ec = executor_config(config(tmp_path, '[executor]\nkind = "ray"\naddress = "auto"\nnum_workers = 4\n'
                                          'num_cpus = 0.5\nresources = { sdxl = 1 }\n'))
    assert (ec.kind, ec.address, ec.num_workers, ec.num_cpus, ec.resources) == ("ray", "auto", 4, 0.5, {"sdxl": 1})
    assert executor_config(config(tmp_path, '[executor]\nkind = "ray"\n'), "local").kind == "local"  # the flag wins


@pytest.mark.parametrize(("text", "message"), [
    ('[executor]\nkind = "spark"\n', "unknown executor 'spark'"),
    ('[executor]\nnum_worker = 2\n', "did you mean 'num_workers'"),
    ('[executor]\nnum_workers = 0\n', "num_workers must be a whole number"),
    ('[executor]\nnum_cpus = -1\n', "num_cpus must be a number of at least 0"),
    ('[executor]\nresources = { sdxl = "yes" }\n', "resources must map"),
    ('[executor]\naddress = 5\n', "address must be an address"),
])
def test_executor_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        executor_config(config(tmp_path, text))
    assert message in str(info.value.message) + str(info.value.hint)


def test_missing_ray_gives_the_install_hint(monkeypatch):
    from viwoscript.executors.ray import ExecutorError, RayExecutor

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ExecutorError) as info:
        RayExecutor()
    assert info.value.hint == "pip install 'viwoscript[ray]'"


def test_an_unreachable_cluster_is_reported_at_once():
    pytest.importorskip("ray")
    from viwoscript.executors.ray import ExecutorError, RayExecutor

    ex = RayExecutor(address="127.0.0.1:1")
    with pytest.raises(ExecutorError, match="cannot reach the Ray cluster at '127.0.0.1:1'") as info:
        ex.start()
    assert "ray start --head" in info.value.hint
    ex.shutdown()


def test_cli_run_offers_the_executor_option():
    from click.testing import CliRunner

    from viwoscript.cli import cli

    out = CliRunner().invoke(cli, ["run", "--help"]).output
    assert "--executor [local|ray]" in out


def test_images_this_process_saves_in_an_executor_run_name_the_executor(tmp_path):
    """`viwo run --executor ray`: an image made here (not on a worker) records executor and worker
    "driver"; one a worker made keeps its own worker."""
    import json

    from PIL import Image as PILImage

    from viwoscript.terminal.console import ImageSaver
    from viwoscript.values import Image

    saver = ImageSaver(tmp_path, "run")
    saver.where = {"executor": "ray", "worker": "driver"}
    pixels = np.zeros((4, 4, 3), np.uint8)
    here = saver.save(Image(pixels, {"seed": 1}))
    there = saver.save(Image(pixels, {"seed": 2, "executor": "ray", "worker": "worker-2"}))
    meta = [json.loads(PILImage.open(p).text["viwo"])["metadata"] for p in (here, there)]
    assert meta[0] == {"seed": 1, "executor": "ray", "worker": "driver"}
    assert meta[1] == {"seed": 2, "executor": "ray", "worker": "worker-2"}
    plain = ImageSaver(tmp_path, "local").save(Image(pixels, {"seed": 3}))
    assert "executor" not in json.loads(PILImage.open(plain).text["viwo"])["metadata"]
