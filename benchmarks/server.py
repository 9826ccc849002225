"""`viwo serve` throughput and latency, against baselines measured in the same run.

    python benchmarks/server.py [--calls 20] [--clients 1,50,200] [--slots 1]

Prints, for trivial `execute_script` calls ((+ 1 2)) from C concurrent WebSocket clients on loopback:
calls/s and p50/p99 latency, beside

  (a)  the same jobs run in-process: a fresh Runtime per job with the server's default grants, no server,
       through the public API (``Runtime(...).run(script)``: each run starts its evaluation thread);
  (a') the same, on a slot thread of the local executor: the server's own way of running a job (the
       slot is an evaluation thread: no thread per job), i.e. the job without any of the serving;
  (b)  a bare aiohttp JSON-RPC echo server (same clients, same framing, no work): the ceiling for any
       aiohttp server on this machine;

plus the cost of creating a job's Runtime with default grants (goal <= 0.3 ms). Goals (issue 15):
server >= 0.5x (a); p99 under load <= 10x p50. The baselines are measured before and after the servers
run and averaged (the machine's load drifts). On Linux, the CPU time the server process spent per call
is printed, and "CPU vs (a)" compares it with the CPU time of a job in (a): calls per CPU-second of the
server against jobs per CPU-second in-process, a figure far less sensitive to other load than calls/s
(under load, (a)'s thread per job makes its wall-clock rate swing widely).
The server and the echo server run in their own processes; the clients share the machine with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "bench-token-123"
ROOT = Path(__file__).resolve().parent.parent

ECHO_SERVER = r"""
import asyncio, json, sys
from aiohttp import web, WSMsgType
async def rpc(request):
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=16 << 20)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            m = json.loads(msg.data)
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": m.get("id"), "result": m.get("params")}))
    return ws
async def main():
    app = web.Application(); app.router.add_get("/rpc", rpc)
    runner = web.AppRunner(app, access_log=None); await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    print("open http://127.0.0.1:%d/?token=x" % site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def start(cmd: list[str], cwd: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(m.group(1))


async def load(port: int, clients: int, calls: int, method: str, params: dict, token: str | None) -> dict:
    import aiohttp

    latencies: list[float] = []
    wrong = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as session:
        sockets = [await session.ws_connect(f"http://127.0.0.1:{port}/rpc?client_id=c{i}") for i in range(clients)]
        start_gate = asyncio.Event()

        async def client(ws):
            nonlocal wrong
            await start_gate.wait()
            for k in range(calls):
                t = time.perf_counter()
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": k, "method": method, "params": params}))
                while True:
                    data = json.loads((await ws.receive()).data)
                    if data.get("id") == k:
                        break
                latencies.append(time.perf_counter() - t)
                result = data.get("result")
                if method == "execute_script" and not (isinstance(result, dict) and result.get("result") == 3):
                    wrong += 1

        tasks = [asyncio.ensure_future(client(ws)) for ws in sockets]
        t0 = time.perf_counter()
        start_gate.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        for ws in sockets:
            await ws.close()
    latencies.sort()
    return {"calls_s": len(latencies) / elapsed, "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], "wrong": wrong,
            "n": len(latencies)}


def in_process(n: int) -> tuple[float, float]:
    """(a): jobs/s and CPU ms per job, a fresh Runtime per job with default grants, public API."""
    from viwoscript.limits import Limits
    from viwoscript.runtime import Runtime

    limits = Limits(gas=10**9, timeout=600)
    for _ in range(20):
        Runtime(grants="default", limits=limits).run("(+ 1 2)")
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        assert Runtime(grants="default", limits=limits).run("(+ 1 2)") == 3
    return n / (time.perf_counter() - t), (time.process_time() - c) / n * 1000


def in_slot(n: int) -> tuple[float, float]:
    """(a'): jobs/s and CPU ms per job, a fresh Runtime per job on a slot thread of the local executor."""
    from viwoscript.executors.base import RunSettings
    from viwoscript.executors.local import LocalExecutor
    from viwoscript.limits import Limits

    ex = LocalExecutor(slots=1)
    settings = RunSettings(limits=Limits(gas=10**9, timeout=600))

    def jobs(prefix: str, count: int) -> tuple[float, float]:
        t, c = time.perf_counter(), time.thread_time()
        for i in range(count):
            out = ex.run_sync(f"{prefix}{i}", "u", settings, "(+ 1 2)", None, None, None)
            assert out.value == 3
        return time.perf_counter() - t, time.thread_time() - c

    async def both() -> tuple[float, float]:
        await ex.run_in_slot(jobs, "w", 20)
        elapsed = await ex.run_in_slot(jobs, "j", n)
        await ex.close()
        return elapsed

    elapsed, cpu = asyncio.run(both())
    return n / elapsed, cpu / n * 1000


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far (Linux; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def runtime_creation(n: int = 2000) -> tuple[float, float]:
    """(ms to create a Runtime with default grants, ms to create one and run a trivial script)."""
    from viwoscript.runtime import Runtime

    for _ in range(50):
        Runtime(grants="default").run("(+ 1 2)")
    t = time.perf_counter()
    for _ in range(n):
        Runtime(grants="default")
    create = (time.perf_counter() - t) / n * 1000
    t = time.perf_counter()
    for _ in range(n // 4):
        Runtime(grants="default").run("(+ 1 2)")
    run = (time.perf_counter() - t) / (n // 4) * 1000
    return create, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20, help="execute_script calls per client")
    ap.add_argument("--clients", default="1,50,200", help="comma-separated client counts")
    ap.add_argument("--slots", type=int, default=1)
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    n = max(counts) * args.calls

    create_ms, run_ms = runtime_creation()
    print(f"Runtime(grants='default'): {create_ms:.3f} ms to create (goal <= 0.3), {run_ms:.3f} ms with a trivial run")
    base = [in_process(n)]
    slot = [in_slot(n)]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        echo, echo_port = start([sys.executable, "-c", ECHO_SERVER], tmp)
        server, port = start([sys.executable, "-m", "viwoscript", "serve", "--port", "0", "--token", TOKEN,
                              "--data", str(Path(tmp) / "data"), "--slots", str(args.slots)], tmp)
        try:
            asyncio.run(load(port, 5, 4, "execute_script", {"script": "(+ 1 2)"}, TOKEN))  # warm up
            for c in counts:
                e = asyncio.run(load(echo_port, c, args.calls, "echo", {"script": "(+ 1 2)"}, None))
                cpu0 = process_cpu(server.pid)
                s = asyncio.run(load(port, c, args.calls, "execute_script", {"script": "(+ 1 2)"}, TOKEN))
                cpu1 = process_cpu(server.pid)
                assert s["wrong"] == 0, f"{s['wrong']} wrong answers"
                # (the kernel counts CPU time in ticks of 10 ms or less: too few calls say nothing)
                enough = cpu0 is not None and cpu1 is not None and cpu1 - cpu0 >= 0.1
                s["cpu_ms"] = (cpu1 - cpu0) / s["n"] * 1000 if enough else None
                rows.append((c, e, s))
        finally:
            for proc in (echo, server):
                proc.terminate()
                proc.wait(30)
    base.append(in_process(n))
    slot.append(in_slot(n))

    a = statistics.mean(b[0] for b in base)
    a_slot = statistics.mean(b[0] for b in slot)
    slot_cpu = statistics.mean(b[1] for b in slot)
    print(f"(a)  in-process, fresh Runtime per job (public API): {a:.0f} jobs/s "
          f"(before {base[0][0]:.0f}, after {base[1][0]:.0f}; {statistics.mean(b[1] for b in base):.3f} CPU ms/job)")
    print(f"(a') the same on a local-executor slot:              {a_slot:.0f} jobs/s "
          f"(before {slot[0][0]:.0f}, after {slot[1][0]:.0f}; {slot_cpu:.3f} CPU ms/job)")
    a_cpu = statistics.mean(b[1] for b in base)
    print(f"{'clients':>8} {'':>12} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} {'vs (a)':>7} "
          + "vs (a')".rjust(8) + f" {'CPU ms/call':>12} {'CPU vs (a)':>11}")
    for c, e, s in rows:
        print(f"{c:>8} {'(b) echo':>12} {e['calls_s']:>9.0f} {e['p50'] * 1000:>8.1f} {e['p99'] * 1000:>8.1f} "
              f"{e['p99'] / e['p50']:>8.1f} {e['calls_s'] / a:>6.2f}x {e['calls_s'] / a_slot:>7.2f}x")
        cpu = f"{s['cpu_ms']:>12.3f} {a_cpu / s['cpu_ms']:>10.2f}x" if s["cpu_ms"] else f"{'?':>12}"
        print(f"{c:>8} {'viwo serve':>12} {s['calls_s']:>9.0f} {s['p50'] * 1000:>8.1f} {s['p99'] * 1000:>8.1f} "
              f"{s['p99'] / s['p50']:>8.1f} {s['calls_s'] / a:>6.2f}x {s['calls_s'] / a_slot:>7.2f}x {cpu}")
    print(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
