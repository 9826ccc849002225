"""A real `viwo serve` process killed with SIGKILL mid-job and started again (design §15: jobs survive)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from server_helpers import FOREVER, Rpc, run

TOKEN = "restart-token-1"
URL_RE = re.compile(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)")


def start(data: Path, cwd: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "viwoscript", "serve", "--port", "0", "--token", TOKEN,
                             "--data", str(data)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = URL_RE.search(line)
    if not m:
        proc.kill()
        raise AssertionError(f"no URL printed: {line!r} {proc.stderr.read()}")
    assert m.group(2) == TOKEN
    return proc, int(m.group(1))


class _Client:
    """What Rpc.connect needs from aiohttp's TestClient, for a server in another process."""

    def __init__(self, session, port):
        self.session = session
        self.port = port

    async def ws_connect(self, path):
        return await self.session.ws_connect(f"http://127.0.0.1:{self.port}{path}")


def test_sigkill_mid_job_then_restart(tmp_path):
    import aiohttp

    data = tmp_path / "data"
    proc, port = start(data, tmp_path)
    try:
        async def before():
            async with aiohttp.ClientSession() as session:
                rpc = await Rpc.connect(_Client(session, port), TOKEN, client_id="tab")
                running = await rpc.call("submit_script", script=FOREVER)
                await rpc.wait_status(running["job"], "running")
                queued = await rpc.call("submit_script", script="(+ 40 2)")
                cancelled = await rpc.call("submit_script", script="(+ 1 1)")
                assert (await rpc.call("cancel_job", job=cancelled["job"]))["status"] == "cancelled"
                notes = list(rpc.notes)
                await rpc.close()
                return running["job"], queued["job"], cancelled["job"], notes

        running, queued, cancelled, notes1 = run(before())
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()

    proc, port = start(data, tmp_path)
    try:
        async def after():
            async with aiohttp.ClientSession() as session:
                rpc = await Rpc.connect(_Client(session, port), TOKEN, client_id="tab")
                rec = await rpc.call("get_job", job=running)
                assert rec["status"] == "interrupted" and rec["error"]["type"] == "Interrupted"
                for _ in range(600):
                    rec = await rpc.call("get_job", job=queued)
                    if rec["status"] == "done":
                        break
                    await asyncio.sleep(0.05)
                assert rec["status"] == "done" and rec["result"] == 42
                assert (await rpc.call("get_job", job=cancelled))["status"] == "cancelled"
                notes = list(rpc.notes)
                await rpc.close()
                return notes

        notes2 = run(after())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()
    seen = [n["params"]["status"] for n in notes1 + notes2 if n["params"].get("job") == cancelled]
    assert "running" not in seen and seen[-1] == "cancelled"
