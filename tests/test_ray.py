"""The ray executor (issue 19, docs/distributed.md): batch items on two Ray workers on loopback.

One Ray session for the whole module (started by the fixture, stopped at its end). Marked slow: starting
Ray takes 5-30 s on a busy machine; `.ci/run` runs these with `-m slow`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

import ray_helpers  # noqa: E402
from ray_helpers import GRANTS, Sleeper  # noqa: E402

from viwoscript.errors import InterruptedError_, ScriptError  # noqa: E402
from viwoscript.runtime import Runtime  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "batch_seeds.viwo"


@pytest.fixture(scope="module")
def ex():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    from viwoscript.executors.ray import RayExecutor

    ray.cloudpickle.register_pickle_by_value(ray_helpers)  # the test capability travels by value
    executor = RayExecutor(num_workers=2, num_cpus=0.5, capabilities=[Sleeper],
                           init_options={"num_cpus": 2, "num_gpus": 0, "_node_ip_address": "127.0.0.1"})
    executor.start()
    yield executor
    executor.shutdown()
    assert not ray.is_initialized()


def runtime(ex=None, **kw) -> Runtime:
    kw.setdefault("grants", GRANTS)
    return Runtime(capabilities=[Sleeper], roots=[str(ROOT)], executor=ex, **kw)


def images_of(value) -> list:
    from viwoscript.values import Image

    out = []

    def walk(v):
        if isinstance(v, Image):
            out.append(v)
        elif isinstance(v, list):
            for i in v:
                walk(i)
        elif isinstance(v, dict):
            for i in v.values():
                walk(i)

    walk(value)
    return out


def test_example_batches_give_the_same_pixels_under_both_executors(ex):
    source = EXAMPLE.read_text()
    local = runtime(grants="default").run(source, filename=str(EXAMPLE))
    events: list = []
    remote = runtime(ex, grants="default", on_event=events.append).run(source, filename=str(EXAMPLE))
    assert {k: remote[k] for k in ("seeds", "used", "grid", "refined")} == \
        {k: local[k] for k in ("seeds", "used", "grid", "refined")}
    assert np.array_equal(remote["sheet"].pixels, local["sheet"].pixels)
    # the contact sheet is a composite of remote results: it records the executor and the workers
    assert remote["sheet"].metadata["executor"] == "ray"
    assert set(remote["sheet"].metadata["workers"]) <= {"worker-1", "worker-2"}
    assert "executor" not in local["sheet"].metadata
    steps = [e["step"] for e in events if e.get("type") == "progress" and e.get("task") == "batch.run"]
    assert steps[:4] == [1, 2, 3, 4]
    warnings = [e for e in events if e.get("type") == "warn"]
    assert len(warnings) == len({w["message"] for w in warnings})  # each worker's warning shown once


def test_workers_use_torch_threads_as_here(ex):
    from viwoscript.executors.ray import local_threads

    threads = local_threads()
    if threads is None:
        pytest.skip("torch is not installed")
    assert [w["threads"] for w in ex.workers] == [str(threads)] * 2


def test_sweeps_and_each_match_local_item_by_item(ex):
    code = '''(std.seq
      (std.let B (std.import "batch"))
      (std.let gen (get_capability "diffusers.generate"))
      (std.let small {"width" 64 "height" 64 "steps" 2})
      (std.let a (std.apply (obj.get B "seed_sweep") gen "a comet" small 3 3))
      (std.let b (std.apply (obj.get B "prompt_sweep") gen ["a cat" "a dog"] (obj.merge small {"seed" 9})))
      (std.let k 100)
      (std.let c (std.apply (obj.get B "each") [1 2 3]
        (std.lambda (x i) (obj.get (std.call_method gen "textToImage" "x" (obj.merge small {"seed" (+ k x i)})) "image"))))
      [(std.apply (obj.get B "images") a) (std.apply (obj.get B "images") b)
       (list.map (obj.get c "results") (std.lambda (r) (obj.get r "value")))])'''
    local = runtime().run(code)
    remote = runtime(ex).run(code)
    li, ri = images_of(local), images_of(remote)
    assert len(li) == len(ri) == 8
    for a, b in zip(li, ri, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
        assert b.metadata["executor"] == "ray" and b.metadata["worker"] in ("worker-1", "worker-2")
        assert {k: v for k, v in b.metadata.items() if k not in ("executor", "worker")} == a.metadata


def test_two_items_run_at_overlapping_times_on_two_workers(ex):
    code = '''(std.seq (std.let B (std.import "batch")) (std.let s (get_capability "test.sleep"))
      (obj.get (std.apply (obj.get B "each") [1 2]
        (std.lambda (t) (std.call_method s "nap" {"seconds" 1.5 "steps" 3 "tag" t}))) "results"))'''
    results = [r["value"] for r in runtime(ex).run(code)]
    (a, b) = results
    assert [a["tag"], b["tag"]] == [1, 2]  # gathered in order
    assert a["pid"] != b["pid"]  # two actors
    assert a["start"] < b["end"] and b["start"] < a["end"]  # at overlapping times


def test_progress_and_logs_travel_back(ex):
    events: list = []
    code = '''(batch.run (get_capability "test.sleep") "nap" {"seconds" 0.3 "steps" 3} [{"tag" 1} {"tag" 2}])'''
    out = runtime(ex, on_event=events.append).run(code)
    assert out["ok"] == 2
    naps = [e for e in events if e.get("type") == "progress" and e.get("task") == "nap"]
    assert len(naps) == 6
    assert [e["message"] for e in events if e.get("type") == "log"] == ["napped 0.3 s"] * 2


def test_a_capture_that_cannot_travel_is_an_error_naming_it(ex, tmp_path):
    code = '''(std.seq (std.let B (std.import "batch")) (std.let ent (entity.save (image.new 4 4) "x"))
      (std.apply (obj.get B "each") [1] (std.lambda (x) (obj.get ent "name"))))'''
    rt = runtime(ex, store=str(tmp_path / "store"))
    with pytest.raises(ScriptError, match="captures 'ent'") as info:
        rt.run(code, filename="t.viwo")
    assert info.value.span is not None and info.value.span.line == 2  # the lambda that captures it


def test_capabilities_are_granted_again_under_the_same_params(ex):
    # a delegated handle narrower than the grant: the worker enforces the narrower limit
    code = '''(std.seq (std.let B (std.import "batch"))
      (std.let gen (delegate (get_capability "diffusers.generate") {"max_steps" 3}))
      (obj.get (std.apply (obj.get B "each") [2 5]
        (std.lambda (n) (obj.get (std.call_method gen "textToImage" "x" {"width" 64 "height" 64 "steps" n "seed" 1}) "seed")))
        "results"))'''
    local = runtime().run(code)
    remote = runtime(ex).run(code)
    assert [r["status"] for r in remote] == [r["status"] for r in local] == ["ok", "error"]
    assert remote[1]["error"] == local[1]["error"]
    assert "steps" in remote[1]["error"]


def test_grants_and_budget_are_checked_here_before_anything_is_sent(ex):
    rt = runtime(ex, grants=[{"type": "diffusers.generate", "params": {"max_compute": 0.05, "max_steps": 4}}])
    before = dict(ex.counts)
    with pytest.raises(Exception, match="max_compute"):
        rt.run('(batch.run (get_capability "diffusers.generate") "textToImage" {"prompt" "x" "width" 64 "height" 64 "steps" 4} '
               '[1 2 3 4])')
    out = rt.run('(batch.run (get_capability "diffusers.generate") "textToImage" {"prompt" "x" "width" 64 "height" 64} '
                 '[{"seed" 1 "steps" 2} {"seed" 2 "steps" 9}])')
    assert [r["status"] for r in out["results"]] == ["ok", "error"]
    assert "steps" in out["results"][1]["error"]
    assert sum(ex.counts.values()) - sum(before.values()) == 1  # only the item that passed was sent


def test_cancel_stops_queued_items_and_interrupts_running_ones(ex):
    events: list = []
    rt = runtime(ex, on_event=events.append)
    code = '''(batch.run (get_capability "test.sleep") "nap" {"seconds" 20 "steps" 200}
      [{"tag" 1} {"tag" 2} {"tag" 3} {"tag" 4} {"tag" 5} {"tag" 6}])'''
    outcome: dict = {}

    def go():
        try:
            outcome["value"] = rt.run(code)
        except BaseException as e:  # noqa: BLE001
            outcome["error"] = e

    before = sum(ex.counts.values())
    t0 = time.monotonic()
    thread = threading.Thread(target=go)
    thread.start()
    while not any(e.get("task") == "nap" for e in events) and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    rt.interrupt()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), InterruptedError_)
    assert time.monotonic() - t0 < 40  # running naps were interrupted, not waited for (20 s each)
    assert sum(ex.counts.values()) - before <= 2  # the queued items never went out
    # the workers are free again
    assert runtime(ex).run('(obj.get (batch.run (get_capability "test.sleep") "nap" {"seconds" 0} [{"tag" 1} {"tag" 2}]) "ok")') == 2


def test_a_worker_that_dies_is_retried_once_then_the_item_fails(ex, tmp_path):
    marker = tmp_path / "died-once"
    code = f'''(obj.get (batch.run (get_capability "test.sleep") "die" {{}}
      [{{"mode" "never"}} {{"mode" "once" "marker" {json.dumps(str(marker))}}} {{"mode" "never"}}]) "results")'''
    results = runtime(ex).run(code)
    assert [r["status"] for r in results] == ["ok", "ok", "ok"], results
    assert marker.exists()  # the second item killed its worker once, then succeeded on its retry
    results = runtime(ex).run('(obj.get (batch.run (get_capability "test.sleep") "die" {} '
                              '[{"mode" "always"} {"mode" "never"}]) "results")')
    assert [r["status"] for r in results] == ["error", "ok"], results  # the batch goes on
    assert "stopped during the call (2 tries" in results[0]["error"]
    # without continue_on_error the death is the batch's error
    with pytest.raises(ScriptError, match="stopped during the call"):
        runtime(ex).run('(batch.run (get_capability "test.sleep") "die" {} [{"mode" "always"}] '
                        '{"continue_on_error" false})')


def test_viwo_run_executor_ray_writes_the_same_files(ex, tmp_path):
    import ray

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    outs = {}
    for kind in ("local", "ray"):
        work = tmp_path / kind
        work.mkdir()
        # join the fixture's cluster (what `address = "auto"` does on a machine running `ray start`)
        address = ray.get_runtime_context().gcs_address
        (work / "viwo.toml").write_text(f'[executor]\naddress = "{address}"\nnum_workers = 2\nnum_cpus = 0.25\n')
        proc = subprocess.run([sys.executable, "-m", "viwoscript", "run", str(EXAMPLE), "--executor", kind,
                               "--out", "out"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs[kind] = (work / "out", proc.stderr)
    local_files = sorted(p.name for p in outs["local"][0].iterdir())
    assert local_files == sorted(p.name for p in outs["ray"][0].iterdir()) and local_files
    from PIL import Image as PILImage

    for name in local_files:
        a = np.asarray(PILImage.open(outs["local"][0] / name))
        b = np.asarray(PILImage.open(outs["ray"][0] / name))
        assert np.array_equal(a, b)
        meta = json.loads(PILImage.open(outs["ray"][0] / name).text["viwo"])
        assert meta["metadata"]["executor"] == "ray" and meta["metadata"]["workers"]
    assert "ray executor (joined" in outs["ray"][1] and "worker-1" in outs["ray"][1]
    assert ray.is_initialized() and ex.run_items  # the cluster it joined is still up
    assert runtime(ex).run('(obj.get (batch.run (get_capability "test.sleep") "nap" {"seconds" 0} [{"tag" 1}]) "ok")') == 1


def test_viwo_run_arg_sets_run_as_whole_jobs_on_the_workers(ex, tmp_path):
    """`viwo run FILE --arg-sets` with --executor ray: each set a whole job on a worker, the same files
    pixel for pixel as the local executor's, each recording the worker that made it."""
    import ray
    from PIL import Image as PILImage

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    script = tmp_path / "gen.viwo"
    script.write_text('(obj.get (std.call_method (get_capability "diffusers.generate") "textToImage" (std.arg 0) '
                      '{"width" 64 "height" 64 "steps" 2 "seed" (std.arg 1)}) "image")', encoding="utf-8")
    sets = tmp_path / "sets.json"
    sets.write_text(json.dumps([["a comet", 1], ["a cat", 2], {"prompt": "a dog", "seed": 3}]), encoding="utf-8")
    address = ray.get_runtime_context().gcs_address
    outs = {}
    for kind in ("local", "ray"):
        work = tmp_path / kind
        work.mkdir()
        (work / "viwo.toml").write_text(f'[executor]\naddress = "{address}"\nnum_workers = 2\nnum_cpus = 0.25\n')
        proc = subprocess.run([sys.executable, "-m", "viwoscript", "run", str(script), "--arg-sets", str(sets),
                               "--executor", kind, "--out", "out"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs[kind] = work / "out"
    names = sorted(p.name for p in outs["local"].iterdir())
    assert names == [f"gen-set00{i}-001.png" for i in (1, 2, 3)]
    assert names == sorted(p.name for p in outs["ray"].iterdir())
    for name in names:
        a, b = PILImage.open(outs["local"] / name), PILImage.open(outs["ray"] / name)
        assert np.array_equal(np.asarray(a), np.asarray(b))
        meta = json.loads(b.text["viwo"])["metadata"]
        assert meta["executor"] == "ray" and meta["worker"] in ("worker-1", "worker-2")
        assert "executor" not in json.loads(a.text["viwo"])["metadata"]


def test_viwo_serve_jobs_and_calls_run_on_ray_workers(ex, tmp_path):
    """Whole jobs and single capability calls of `viwo serve` go through the ray executor (here one that
    joins the module's Ray session, so closing the server leaves it running); cancel reaches the worker."""
    import ray
    from aiohttp.test_utils import TestClient, TestServer
    from server_helpers import FOREVER, Rpc, config, run

    from viwoscript.executors.ray import RayExecutor
    from viwoscript.server.app import Server, make_app

    remote = RayExecutor(address=ray.get_runtime_context().gcs_address, num_workers=1, num_cpus=0.25)

    async def go():
        sc = config(tmp_path, grants="default")
        server = Server(sc, executor=remote)
        remote.host = server  # (make_executor passes it when the server builds its own executor)
        async with TestServer(make_app(sc, server=server), host="127.0.0.1") as ts, TestClient(ts) as client:
            rpc = await Rpc.connect(client)
            job = await rpc.call("execute_script", script="(+ 1 2)")
            assert job["status"] == "done" and job["result"] == 3
            made = await rpc.call("execute_script", script='(obj.get (std.call_method (get_capability '
                                  '"diffusers.generate") "textToImage" "a comet" {"width" 64 "height" 64 '
                                  '"steps" 2 "seed" 5}) "image")')
            assert made["status"] == "done" and len(made["images"]) == 1
            call = await rpc.call("plugin_rpc", method="diffusers.generate",
                                  params={"prompt": "a comet", "width": 64, "height": 64, "steps": 2, "seed": 5})
            assert call["seed"] == 5
            # an upload named in the script goes along with the job
            from server_helpers import TOKEN_A, png_bytes

            up = await (await client.post("/blobs", data=png_bytes(8, 6),
                                          headers={"Authorization": f"Bearer {TOKEN_A}"})).json()
            sized = await rpc.call("execute_script", script=f'(image.size (image.load "blob:{up["sha256"]}"))')
            assert sized["status"] == "done" and sized["result"] == [8, 6], sized["error"]
            missing = await rpc.call("execute_script", script=f'(image.load "blob:{"0" * 64}")')
            assert missing["status"] == "error" and "no upload" in missing["error"]["message"]
            bad = await rpc.call("execute_script", script='(+ 1\n (std.throw "boom"))')
            assert bad["status"] == "error" and bad["error"]["message"] == "boom" and bad["error"]["line"] == 2
            long = await rpc.call("submit_script", script=FOREVER)
            await rpc.wait_status(long["job"], "running")
            await rpc.call("cancel_job", job=long["job"])
            await rpc.wait_status(long["job"], "cancelled")
            await rpc.close()
        return made

    made = run(go())
    assert remote.counts.get("worker-1", 0) >= 6
    assert ray.is_initialized()  # the server's executor joined: it left the session running
    blob = tmp_path / "data" / "files"
    assert made["images"][0]["sha256"] and blob.exists()


def test_ctrl_c_stops_viwo_run_and_its_remote_work(ex, tmp_path):
    import signal

    import ray

    address = ray.get_runtime_context().gcs_address
    (tmp_path / "viwo.toml").write_text(f'[executor]\nkind = "ray"\naddress = "{address}"\nnum_workers = 2\n'
                                        'num_cpus = 0.25\n')
    (tmp_path / "forever.viwo").write_text('(std.seq (std.let B (std.import "batch")) (std.log "sending")\n'
                                           '  (std.apply (obj.get B "each") [1 2] (std.lambda (x) (std.while true x))))')
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "viwoscript", "run", "forever.viwo", "--gas", "unlimited"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "sending" in line:
                break
        time.sleep(3)  # the items are on the workers, looping
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(120) == 130
    finally:
        proc.kill()
    assert "interrupted" in rest and "ray executor (joined" in rest
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 1.0 and time.monotonic() < deadline:
        time.sleep(0.2)  # the run's workers are gone: only the module's two (0.5 CPU each) hold CPUs
    assert ray.available_resources().get("CPU", 0) == pytest.approx(1.0)


def test_a_unit_cancelled_at_any_moment_ends_cancelled(ex):
    """Cancel races the unit's start: before it is sent, before the worker registers it, while it runs."""
    from viwoscript.executors.base import RunSettings
    from viwoscript.limits import Limits

    settings = RunSettings(limits=Limits(gas=10**9, timeout=600), grants="default")
    for i in range(8):
        out: dict = {}
        work = f"race-{i}"
        thread = threading.Thread(target=lambda w=work, o=out: o.setdefault(
            "outcome", ex.run_unit(w, "(std.while true null)", None, None, settings, None)))
        thread.start()
        time.sleep(0.03 * i)
        ex.cancel(work)
        thread.join(60)
        assert out["outcome"].status == "cancelled", i
