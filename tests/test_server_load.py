"""Bounded load test (slow): 200 concurrent clients × 5 scripts each on loopback; every answer right, none lost."""

from __future__ import annotations

import asyncio

import pytest
from server_helpers import TOKEN_A, TOKEN_B, Rpc, config, run, served

CLIENTS = 200
SCRIPTS = 5


class _Sockets:
    def __init__(self, session, test_client):
        self.session = session
        self.test_client = test_client

    async def ws_connect(self, path):
        return await self.session.ws_connect(self.test_client.make_url(path))


@pytest.mark.slow
def test_200_clients_5_scripts_each(tmp_path):
    async def go():
        import aiohttp

        async with served(config(tmp_path, max_queued_jobs=SCRIPTS)) as (test_client, server), \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            client = _Sockets(session, test_client)  # the test client's session holds at most 100 connections
            rpcs = [await Rpc.connect(client, TOKEN_A if i % 2 else TOKEN_B, client_id=f"c{i}") for i in range(CLIENTS)]

            async def one(i: int, rpc: Rpc) -> list:
                out = []
                for k in range(SCRIPTS):
                    if k % 2:
                        rec = await rpc.call("execute_script", script=["*", i, ["std.arg", 0]], args=[k])
                    else:
                        sub = await rpc.call("submit_script", script=f"(+ {i} {k})")
                        await rpc.wait_status(sub["job"], "done")
                        rec = await rpc.call("get_job", job=sub["job"])
                    out.append(rec)
                return out

            results = await asyncio.wait_for(asyncio.gather(*(one(i, r) for i, r in enumerate(rpcs))), 600)
            for i, recs in enumerate(results):
                assert [r["status"] for r in recs] == ["done"] * SCRIPTS
                assert [r["result"] for r in recs] == [i * k if k % 2 else i + k for k in range(SCRIPTS)]
            # nothing lost: every client heard done for each of its jobs, and only its own
            for i, rpc in enumerate(rpcs):
                jobs = {r["job"] for r in results[i]}
                assert {n["params"]["job"] for n in rpc.notes} == jobs
                assert all(rpc.statuses(j)[-1] == "done" for j in jobs)
            for rpc in rpcs:
                await rpc.close()
            assert await server.jobs.db(server.jobs.jobs.queued_count) == 0

    run(go())
