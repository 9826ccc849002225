"""Per-job Runtime creation: what a server pays to give each job a fresh Runtime with default grants.

    python benchmarks/runtime.py [-n N] [--check]

A job gets its own Runtime (its own variables, canvas, limits and grants); what is immutable (the
standard opcode registry, the plugins' opcodes, the parsed grammar) is shared copy-on-write, and the
canvas, store, capability and model managers are made on first use. Printed, as medians of N runs in
this process after one warm-up:

* ``create``: ``Runtime(grants="default")`` — goal ≤ 0.3 ms (issue 15; 1.3–2.3 ms before sharing);
* ``create + caps``: the same, then its capability manager built (the first ``get_capability``);
* ``create + run``: the same, then a trivial ``(+ 1 2)`` run (parse cache hit; one evaluation thread);
* ``baseline``: a plain Python object with a dict of ten attributes, for scale on this machine.

``--check`` exits 1 when ``create`` misses the goal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viwoscript.runtime import Runtime  # noqa: E402

GOAL_MS = 0.3


class _Plain:
    def __init__(self):
        for i in range(10):
            setattr(self, f"a{i}", i)


def median_ms(fn, n: int) -> float:
    fn()  # warm-up (first use loads the standard library and reads the plugin entry points)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=2000, help="runs per measurement (default 2000)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if creation exceeds {GOAL_MS} ms")
    args = ap.parse_args(argv)
    n = args.runs

    def create_and_caps():
        rt = Runtime(grants="default")
        rt.caps  # noqa: B018 - builds the capability manager

    rows = [
        ("create", median_ms(lambda: Runtime(grants="default"), n)),
        ("create + caps", median_ms(create_and_caps, max(n // 10, 20))),
        ("create + run", median_ms(lambda: Runtime(grants="default").run("(+ 1 2)"), max(n // 4, 20))),
        ("baseline", median_ms(_Plain, n)),
    ]
    base = rows[-1][1]
    print(f"{'what':<15} {'median ms':>10} {'x baseline':>11}")
    for name, ms in rows:
        print(f"{name:<15} {ms:>10.4f} {ms / base:>10.1f}x")
    create = rows[0][1]
    met = create <= GOAL_MS
    print(f"per-job Runtime creation with default grants: {create:.4f} ms; goal <= {GOAL_MS} ms: "
          f"{'met' if met else 'NOT met'}")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
