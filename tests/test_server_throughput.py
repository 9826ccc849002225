"""The mechanisms behind the server's throughput (docs/server.md, Performance): group commit, the ordered
outbox from slot threads, frames written together, jobs run on their slot. What they must not change:
a reply or notification implies the row is committed; each job's statuses arrive in order."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from server_helpers import TOKEN_A, Rpc, config, run, served


def rows(server) -> dict[str, tuple]:
    """job id -> (status, result) as another connection sees them: committed rows only."""
    path = next(r[2] for r in server.jobs.jobs.store.db.execute("PRAGMA database_list") if r[1] == "main")
    db = sqlite3.connect(path)
    try:
        return {r[0]: (r[1], json.loads(r[2]) if r[2] else None) for r in db.execute("SELECT id, status, result FROM jobs")}
    finally:
        db.close()


async def send_batch(rpc: Rpc, batch: list) -> list:
    """Send a JSON-RPC batch as one message; its answers in request order."""
    n = len(rpc.unmatched)
    await rpc.ws.send_str(json.dumps(batch))
    await rpc.until(lambda: len(rpc.unmatched) >= n + len(batch))
    return sorted(rpc.unmatched[n:n + len(batch)], key=lambda a: a["id"])


def test_a_reply_implies_a_committed_row(tmp_path):
    """Jobs sent in one message share one commit; each submit reply and queued notification comes after it,
    each execute reply after the job's end has committed."""
    async def go():
        async with served(config(tmp_path)) as (client, server):
            rpc = await Rpc.connect(client, client_id="tab")
            batch = [{"jsonrpc": "2.0", "id": i, "method": "submit_script", "params": {"script": f"(+ {i} 1)"}}
                     for i in range(20)]
            ids = [a["result"]["job"] for a in await send_batch(rpc, batch)]
            seen = rows(server)
            assert all(j in seen for j in ids)  # committed before the reply went out
            for j in ids:
                await rpc.wait_status(j, "done")
            # FIFO: the order of the batch
            recs = [await rpc.call("get_job", job=j) for j in ids]
            assert [r["result"] for r in recs] == [i + 1 for i in range(20)]
            assert [r["started"] for r in recs] == sorted(r["started"] for r in recs)
            batch = [{"jsonrpc": "2.0", "id": 100 + i, "method": "execute_script", "params": {"script": f"(* {i} 2)"}}
                     for i in range(20)]
            answer = await send_batch(rpc, batch)
            seen = rows(server)
            for a in answer:
                rec = a["result"]
                assert rec["status"] == "done" and seen[rec["job"]] == ("done", rec["result"])
                assert rpc.statuses(rec["job"]) == ["queued", "running", "done"]
            await rpc.close()

    run(go())


def test_statuses_in_order_for_many_clients(tmp_path):
    """Many clients at once: every job's notifications are queued, running, done, in that order, before
    its reply, and only on its own client's socket."""
    async def go():
        async with served(config(tmp_path)) as (client, _):
            rpcs = [await Rpc.connect(client, TOKEN_A, client_id=f"c{i}") for i in range(20)]

            async def one(i, rpc):
                recs = []
                for k in range(5):
                    rec = await rpc.call("execute_script", script=f"(+ {i} {k})")
                    assert rpc.statuses(rec["job"]) == ["queued", "running", "done"]  # all before the reply
                    recs.append(rec)
                return recs

            results = await asyncio.gather(*(one(i, r) for i, r in enumerate(rpcs)))
            for i, (rpc, recs) in enumerate(zip(rpcs, results, strict=True)):
                assert [r["result"] for r in recs] == [i + k for k in range(5)]
                assert {n["params"]["job"] for n in rpc.notes} == {r["job"] for r in recs}
            for rpc in rpcs:
                await rpc.close()

    run(go())


def test_frames_of_every_size_and_compressed_sockets(tmp_path):
    """Frames the server writes itself (7-bit, 16-bit and 64-bit lengths) and, on a socket with
    permessage-deflate, through aiohttp's writer: the same answers."""
    async def go():
        async with served(config(tmp_path)) as (client, _):
            plain = await Rpc.connect(client, client_id="plain")
            deflate = Rpc(await client.ws_connect(f"/rpc?token={TOKEN_A}&client_id=deflate", compress=15))
            for rpc in (plain, deflate):
                for n in (1, 200, 70_000, 300_000):
                    text = "é" * n
                    rec = await rpc.call("execute_script", script="(std.arg 0)", args=[text])
                    assert rec["status"] == "done" and rec["result"] == text
                    assert rpc.statuses(rec["job"])[-1] == "done"
                await rpc.close()

    run(go())


def test_events_keep_their_order_with_the_status(tmp_path):
    """Events from the slot thread (logs) and the job's end reach the client in the order they happened."""
    async def go():
        async with served(config(tmp_path)) as (client, _):
            rpc = await Rpc.connect(client, client_id="tab")
            rec = await rpc.call("execute_script", script='(std.seq (std.log "a") (std.log "b") (std.log "c") 1)')
            notes = [n for n in rpc.notes if n["params"]["job"] == rec["job"]]
            assert [(n["method"], n["params"].get("status") or n["params"].get("message")) for n in notes] == [
                ("job.status", "queued"), ("job.status", "running"), ("job.log", "a"), ("job.log", "b"),
                ("job.log", "c"), ("job.status", "done")]
            await rpc.close()

    run(go())


def test_queue_positions_are_coalesced(tmp_path):
    """A queue moving fast: job.queue rounds are coalesced (QUEUE_REPORT_INTERVAL); each job hears each
    position at most once, always closer, only within the first QUEUE_REPORT, and never after it started."""
    from server_helpers import FOREVER

    from viwoscript.server.jobs import QUEUE_REPORT

    async def go():
        async with served(config(tmp_path, max_queued_jobs=500)) as (client, _):
            rpc = await Rpc.connect(client, client_id="tab")
            blocker = await rpc.call("submit_script", script=FOREVER)
            await rpc.wait_status(blocker["job"], "running")
            batch = [{"jsonrpc": "2.0", "id": i, "method": "submit_script", "params": {"script": f"(+ {i} 1)"}}
                     for i in range(60)]
            ids = [a["result"]["job"] for a in await send_batch(rpc, batch)]
            assert [(await rpc.call("get_job", job=j))["queue_position"] for j in ids[:3]] == [1, 2, 3]
            await rpc.call("cancel_job", job=blocker["job"])
            for j in ids:
                await rpc.wait_status(j, "done")
            for j in ids:
                seen = [n["params"]["queue_position"] for n in rpc.notes
                        if n["method"] == "job.queue" and n["params"]["job"] == j]
                assert seen == sorted(set(seen), reverse=True) and all(p <= QUEUE_REPORT for p in seen)
                order = [n["method"] + (n["params"].get("status") or "") for n in rpc.notes if n["params"]["job"] == j]
                assert order[-2:] == ["job.statusrunning", "job.statusdone"]  # no position after it started
            await rpc.close()

    run(go())
