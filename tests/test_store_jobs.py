"""viwoscript.store.jobs: job rows (FIFO claim, cancel, recover) and the local executor's cancel."""

from __future__ import annotations

import asyncio
import threading

import pytest

from viwoscript.executors import get_executor
from viwoscript.executors.base import BatchItemSpec, CallSpec, JobSpec, RunSettings
from viwoscript.limits import Limits
from viwoscript.store import Store
from viwoscript.store.jobs import Jobs, QueueFull


@pytest.fixture
def jobs(tmp_path):
    store = Store(tmp_path)
    yield Jobs(store)
    store.close()


def test_fifo_claim_and_finish(jobs):
    a, _ = jobs.create("u", "c", {"script": "1"})
    b, _ = jobs.create("u", "c", {"script": "2"})
    first = jobs.claim_next()
    assert first["job"] == a["job"] and first["status"] == "running" and first["request"] == {"script": "1"}
    assert jobs.claim_next()["job"] == b["job"]
    assert jobs.claim_next() is None
    done = jobs.finish(a["job"], "done", result={"x": 1}, images=[{"url": "/blobs/x.png"}])
    assert done["status"] == "done" and done["result"] == {"x": 1} and done["images"] == [{"url": "/blobs/x.png"}]
    # finishing twice changes nothing
    assert jobs.finish(a["job"], "error", error={"type": "X"})["status"] == "done"


def test_cancel_queued_never_claimed(jobs):
    a, _ = jobs.create("u", "c", {})
    rec, before = jobs.cancel(a["job"], "u")
    assert before == "queued" and rec["status"] == "cancelled"
    assert jobs.claim_next() is None
    assert jobs.cancel(a["job"], "someone-else") == (None, None)
    assert jobs.get(a["job"], "someone-else") is None


def test_cancel_and_claim_race(jobs):
    ids = [jobs.create("u", "c", {})[0]["job"] for _ in range(200)]
    claimed, cancelled = [], []

    def claimer():
        while (rec := jobs.claim_next()) is not None:
            claimed.append(rec["job"])

    def canceller():
        for jid in ids:
            rec, before = jobs.cancel(jid, "u")
            if before == "queued":
                cancelled.append(jid)

    threads = [threading.Thread(target=claimer), threading.Thread(target=canceller)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(claimed) & set(cancelled)
    assert set(claimed) | set(cancelled) == set(ids)


def test_recover_and_limits(jobs):
    a, _ = jobs.create("u", "c", {})
    b, _ = jobs.create("u", "c", {})
    jobs.claim_next()
    assert [r["job"] for r in jobs.recover()] == [a["job"]]
    assert jobs.get(a["job"])["status"] == "interrupted"
    assert jobs.get(b["job"])["status"] == "queued"
    with pytest.raises(QueueFull):
        jobs.create("u", "c", {}, max_queued=1)
    first, created = jobs.create("u", "d", {}, idempotency_key="k")
    again, created2 = jobs.create("u", "d", {}, idempotency_key="k")
    assert created and not created2 and first["job"] == again["job"]
    other, created3 = jobs.create("v", "d", {}, idempotency_key="k")  # keys are per user
    assert created3 and other["job"] != first["job"]
    assert [r["job"] for r in jobs.list("u")][:1] == [first["job"]]
    assert [r["job"] for r in jobs.unfinished("u", "c")] == [b["job"]]


def test_local_executor_cancel_before_and_during(tmp_path):
    settings = RunSettings(limits=Limits(gas=10**9, timeout=60))
    ex = get_executor("local", slots=1)

    async def go():
        ex.cancel("early")
        out = await ex.run_job(JobSpec("early", "u", "(+ 1 2)", settings), lambda e: None)
        assert out.status == "cancelled"
        task = asyncio.ensure_future(ex.run_job(JobSpec("long", "u", "(std.while true null)", settings), lambda e: None))
        while "long" not in ex._running:
            await asyncio.sleep(0.01)
        ex.cancel("long")
        out = await task
        assert out.status == "cancelled"
        out = await ex.run_job(JobSpec("ok", "u", "(+ 1 2)", settings), lambda e: None)
        assert out.status == "done" and out.value == 3
        out = await ex.run_job(JobSpec("bad", "u", "(+ 1", settings), lambda e: None)
        assert out.status == "error" and out.error.kind == "SyntaxError"
        await ex.close()

    asyncio.run(go())


def test_local_executor_call_and_batch_item_units():
    settings = RunSettings(limits=Limits(gas=10**6, timeout=60))
    ex = get_executor("local", slots=2)
    events = []

    async def go():
        out = await ex.run_call(CallSpec("c1", "u", "diffusers.generate", "textToImage",
                                         {"prompt": "x", "width": 64, "height": 64, "steps": 2, "seed": 4}, settings),
                                events.append)
        assert out.status == "done" and out.value["seed"] == 4 and out.value["image"].width == 64
        assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2]
        fn = ["std.lambda", ["x"], ["*", ["std.var", "x"], 10]]
        outs = await asyncio.gather(*(ex.run_batch_item(BatchItemSpec(f"b{i}", "u", fn, i, settings, index=i),
                                                        lambda e: None) for i in range(4)))
        assert [o.value for o in outs] == [0, 10, 20, 30]
        out = await ex.run_call(CallSpec("c2", "u", "diffusers.generate", "textToImage", {"prompt": "x"},
                                         RunSettings(limits=settings.limits, grants=[])), lambda e: None)
        assert out.status == "error"  # not granted: the handle is null
        await ex.close()

    asyncio.run(go())


def test_deep_recursion_on_a_slot_is_a_limit_error():
    """Slots are evaluation threads (big stack): the deepest allowed nesting runs; deeper is a LimitError."""
    src = "(std.seq (std.let f (std.lambda (n) (+ 1 (std.apply f n)))) (std.apply f 0))"
    settings = RunSettings(limits=Limits(gas=None, max_depth=10_000, timeout=60))
    ex = get_executor("local", slots=1)

    async def go():
        out = await ex.run_job(JobSpec("deep", "u", src, settings), lambda e: None)
        assert out.status == "error" and out.error.kind == "LimitError" and "depth" in out.error.message
        await ex.close()

    asyncio.run(go())
