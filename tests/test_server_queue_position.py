"""A queued job's place in the queue: ``queue_position`` in its record and its ``queued`` status, and
``job.queue`` notifications as the queue moves (docs/server.md "The job record", "Notifications")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
sys.path.insert(0, str(Path(__file__).parent))
from server_helpers import FOREVER, TOKEN_B, Rpc, config, run, served  # noqa: E402


def test_queued_jobs_know_their_position_and_hear_when_it_changes(tmp_path):
    async def go():
        async with served(config(tmp_path, slots=1)) as (client, server):
            rpc = await Rpc.connect(client)
            bob = await Rpc.connect(client, TOKEN_B)
            busy = await rpc.call("submit_script", script=FOREVER)
            await rpc.wait_status(busy["job"], "running")
            assert "queue_position" not in await rpc.call("get_job", job=busy["job"])
            first = await rpc.call("submit_script", script=FOREVER)  # runs until cancelled: the third waits
            second = await bob.call("submit_script", script="(+ 2 2)")  # every user's jobs count
            third = await rpc.call("submit_script", script="(+ 3 3)")
            assert [first["queue_position"], second["queue_position"], third["queue_position"]] == [1, 2, 3]
            assert (await rpc.call("get_job", job=third["job"]))["queue_position"] == 3
            queued = [n["params"] for n in rpc.notes if n["method"] == "job.status" and n["params"]["job"] == third["job"]]
            assert queued == [{"job": third["job"], "status": "queued", "queue_position": 3}]
            # a queued job cancelled: the ones behind it move up and hear it (owners only)
            await bob.call("cancel_job", job=second["job"])
            await rpc.until(lambda: {"job": third["job"], "queue_position": 2} in
                            [n["params"] for n in rpc.notes if n["method"] == "job.queue"])
            assert not [n for n in bob.notes if n["method"] == "job.queue" and n["params"]["job"] != second["job"]]
            # the busy slot frees: the first starts, the third is next
            await rpc.call("cancel_job", job=busy["job"])
            await rpc.until(lambda: {"job": third["job"], "queue_position": 1} in
                            [n["params"] for n in rpc.notes if n["method"] == "job.queue"])
            await rpc.call("cancel_job", job=first["job"])
            await rpc.wait_status(third["job"], "done")
            positions = [n["params"]["queue_position"] for n in rpc.notes
                         if n["method"] == "job.queue" and n["params"]["job"] == third["job"]]
            assert positions == [2, 1]  # each position once, in order
            assert "queue_position" not in await rpc.call("get_job", job=third["job"])
            await rpc.close()
            await bob.close()

    run(go())
