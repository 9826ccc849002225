"""The ray executor's scaling (issue 19): a sweep of N calls that each sleep a fixed time (simulated GPU work).

    python benchmarks/executor.py [-n N] [--seconds S] [--workers 1 2 4] [--check]

One Ray session on this machine (``num_cpus=2``, no GPU, loopback, 200 MB object store); for each worker
count W an executor starts W actors reserving ``2/W`` CPUs each (fractional CPU actors, so 4 fit on 2 cores)
and runs ``batch.run`` of N calls of ``bench.sleep.nap`` (S seconds each, in 4 interruptible steps) once to
warm up and once timed. Printed for each W: wall time, throughput in calls/s, the speed-up over the same sweep
run locally (one after another, measured in this run) and the ideal W×. Then Ray's overhead per call: N calls
that sleep 0 s on one worker against the same N calls run locally.

Goal: ≥ 1.7× with 2 workers. ``--check`` exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viwoscript.capabilities import Capability, ParamSpec, method  # noqa: E402
from viwoscript.runtime import Runtime  # noqa: E402

GOAL_2 = 1.7


class Sleeper(Capability):
    """Simulated GPU work: sleeps (defined in this script, so Ray sends the class to the workers by value)."""

    type = "bench.sleep"

    @method("nap", ParamSpec("seconds", "number", 0.5, min=0, max=60), ParamSpec("i", "integer", 0),
            positional=0, returns="number")
    def nap(self, ctx, seconds, i):
        """Sleep `seconds` in 4 steps; returns i."""
        for _ in range(4):
            ctx.check_interrupt()
            time.sleep(seconds / 4)
        return i


def sweep(rt: Runtime, n: int, seconds: float) -> float:
    code = (f'(obj.get (batch.run (get_capability "bench.sleep") "nap" {{"seconds" {seconds}}} '
            f'(list.map (batch.seeds 0 {n}) (std.lambda (i) {{"i" i}}))) "ok")')
    t0 = time.perf_counter()
    ok = rt.run(code)
    elapsed = time.perf_counter() - t0
    if ok != n:
        raise SystemExit(f"sweep: only {ok} of {n} calls succeeded")
    return elapsed


def runtime(executor=None) -> Runtime:
    return Runtime(capabilities=[Sleeper], grants=["bench.sleep"], executor=executor)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=16, help="calls per sweep (default 16)")
    ap.add_argument("--seconds", type=float, default=0.5, help="seconds each call sleeps (default 0.5)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 when 2 workers reach less than {GOAL_2}×")
    a = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    from viwoscript.executors.ray import LOCAL_OBJECT_STORE, RayExecutor

    t0 = time.perf_counter()
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=LOCAL_OBJECT_STORE, _node_ip_address="127.0.0.1")
    print(f"ray.init: {time.perf_counter() - t0:.1f} s")
    try:
        local = sweep(runtime(), a.n, a.seconds)
        print(f"local: {a.n} calls of {a.seconds:g} s in {local:.2f} s ({a.n / local:.2f} calls/s)")
        print(f"{'workers':>7} {'start s':>8} {'wall s':>7} {'calls/s':>8} {'speed-up':>9} {'ideal':>6}")
        speedups = {}
        for w in a.workers:
            ex = RayExecutor(num_workers=w, num_cpus=2 / w, capabilities=[Sleeper])
            t0 = time.perf_counter()
            ex.start()
            started = time.perf_counter() - t0
            try:
                rt = runtime(ex)
                sweep(rt, w, a.seconds)  # warm-up: every worker imports and builds its Runtime once
                wall = sweep(rt, a.n, a.seconds)
            finally:
                ex.shutdown()
            speedups[w] = local / wall
            print(f"{w:>7} {started:>8.1f} {wall:>7.2f} {a.n / wall:>8.2f} {speedups[w]:>8.2f}× {w:>5}×")
        ex = RayExecutor(num_workers=1, num_cpus=1, capabilities=[Sleeper])
        ex.start()
        try:
            rt = runtime(ex)
            sweep(rt, 2, 0)
            remote0 = sweep(rt, a.n, 0)
        finally:
            ex.shutdown()
        local0 = sweep(runtime(), a.n, 0)
        print(f"overhead per call: ray {1000 * remote0 / a.n:.1f} ms, local {1000 * local0 / a.n:.2f} ms "
              f"(+{1000 * (remote0 - local0) / a.n:.1f} ms per call on Ray)")
    finally:
        ray.shutdown()
    if a.check and 2 in speedups and speedups[2] < GOAL_2:
        print(f"FAIL: 2 workers reach {speedups[2]:.2f}×, goal {GOAL_2}×")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
