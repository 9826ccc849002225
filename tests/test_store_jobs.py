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


def test_create_many_is_one_group_commit(jobs):
    """A batch: each item is answered on its own (a full queue refuses only that client's extra job),
    duplicate idempotency keys in one batch give the same job, and the queue keeps the batch's order."""
    items = [("u", "a", {"script": "1"}, None), ("u", "a", {"script": "2"}, None), ("u", "a", {"script": "3"}, None),
             ("u", "b", {"script": "4"}, "k"), ("u", "b", {"script": "5"}, "k")]
    out = jobs.create_many(items, max_queued=2)
    assert isinstance(out[2], QueueFull)
    assert [o[1] for o in (out[0], out[1], out[3], out[4])] == [True, True, True, False]
    assert out[4][0]["job"] == out[3][0]["job"]
    order = [out[0][0]["job"], out[1][0]["job"], out[3][0]["job"]]
    assert [jobs.claim_next()["job"] for _ in range(3)] == order
    assert jobs.claim_next() is None


def test_records_without_reads_match_the_rows(jobs):
    """The records the queue builds from memory (create, claim, finish + claim) are what the table says."""
    a, _ = jobs.create("u", "c", {"script": "(+ 1 2)", "args": [1]})
    assert a.pop("queue_position") == 1 and jobs.get(a["job"]) == a
    b, _ = jobs.create("u", "c", {"script": "2"})
    first = jobs.claim_next()
    assert {k: v for k, v in first.items() if k not in ("owner", "client_id", "request")} == jobs.get(a["job"])
    assert jobs.get(a["job"], full=True) == first
    done, nxt = jobs.finish(first, "done", result={"x": [1, "y"]}, images=[{"url": "/blobs/x.png"}], claim_next=True)
    owner, client = done.pop("owner"), done.pop("client_id")
    assert (owner, client) == ("u", "c") and done == jobs.get(a["job"]) and done["status"] == "done"
    assert nxt["job"] == b["job"] and jobs.get(b["job"], full=True) == nxt
    err, none = jobs.finish(nxt, "error", error={"type": "X", "message": "m"}, claim_next=True)
    assert none is None
    del err["owner"], err["client_id"]
    assert err == jobs.get(b["job"])


def test_a_restarted_queue_loads_its_rows(tmp_path):
    """The in-memory queue is loaded from the rows: FIFO, per-client limits and cancels survive a restart."""
    store = Store(tmp_path)
    jobs = Jobs(store)
    ids = [jobs.create("u", "c", {"script": str(i)})[0]["job"] for i in range(4)]
    jobs.cancel(ids[1], "u")
    running = jobs.claim_next()
    assert running["job"] == ids[0]
    jobs.close()
    again = Jobs(store)
    assert [r["job"] for r in again.recover()] == [ids[0]]
    assert again.queued_count() == 2
    with pytest.raises(QueueFull):
        again.create("u", "c", {}, max_queued=2)
    assert [again.claim_next()["job"] for _ in range(2)] == [ids[2], ids[3]]
    assert again.claim_next() is None
    again.close()
    store.close()


def test_finish_falls_back_when_the_rows_moved(jobs):
    """If the table changed behind the queue's back (another process), finish+claim still tells the truth."""
    a, _ = jobs.create("u", "c", {})
    b, _ = jobs.create("u", "c", {})
    c, _ = jobs.create("u", "c", {})
    first = jobs.claim_next()
    with jobs.store._lock:  # another process took b
        jobs.store.db.execute("UPDATE jobs SET status = 'running' WHERE id = ?", (b["job"],))
    done, nxt = jobs.finish(first, "done", result=1, claim_next=True)
    assert done["status"] == "done" and jobs.get(a["job"])["status"] == "done"
    assert nxt["job"] == c["job"] and jobs.get(c["job"])["status"] == "running"
    # the running job finished elsewhere (another process recovered it): its row is the answer
    with jobs.store._lock:
        jobs.store.db.execute("UPDATE jobs SET status = 'interrupted' WHERE id = ?", (c["job"],))
    d, _ = jobs.create("u", "c", {})
    rec, nxt = jobs.finish(nxt, "done", result=2, claim_next=True)
    assert rec["status"] == "interrupted" and jobs.get(c["job"])["status"] == "interrupted"
    assert nxt["job"] == d["job"] and jobs.get(d["job"])["status"] == "running"


def test_local_executor_shares_parsed_scripts():
    """The same text is parsed once for every job (the tree is immutable); a Runtime with opcodes of its own
    parses for itself; results are the same either way."""
    settings = RunSettings(limits=Limits(gas=10**6, timeout=60))
    ex = get_executor("local", slots=1)
    a = ex.make_runtime("u", settings, None)
    b = ex.make_runtime("v", settings, None)
    assert a.parse("(+ 1 (std.arg 0))") is b.parse("(+ 1 (std.arg 0))")
    assert a.run("(+ 1 (std.arg 0))", args=[1]) == 2 and b.run("(+ 1 (std.arg 0))", args=[5]) == 6
    own = ex.make_runtime("w", settings, None)
    own.registry.unregister("std.log")  # its table is its own now
    assert own.parse("(+ 1 (std.arg 0))") is not a.parse("(+ 1 (std.arg 0))")
    assert ex.run_sync("j", "u", settings, "(+ 1 (std.arg 0))", [2], None, None).value == 3
    asyncio.run(ex.close())
