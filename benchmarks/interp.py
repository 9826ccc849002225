"""Interpreter benchmarks: ViwoScript programs against equivalent plain-Python functions.

    .venv/bin/python benchmarks/interp.py [--repeat N] [--only NAME ...] [--json]
    .venv/bin/python benchmarks/interp.py --profile fib [--top 25]

Each program is written in ViwoScript text form beside a straightforward Python function doing the same
work the same way (no numpy, no tricks). The script is parsed once (parse time is reported separately and
left out of the ratio), then the parsed tree is run with ``Runtime(runner=R).run(tree,
limits=Limits(gas=None))`` for both runners: ``compiled`` (the default: the tree becomes Python functions
once per Runtime, compile time reported separately like parse time) and ``tree`` (the reference
tree-walker). Each result must equal the Python function's. Times are the best of ``--repeat`` runs
(time.perf_counter). Gas (opcode evaluations) is counted in one extra untimed run with a finite budget, and
reported per second of the default runner's timed run. Goal: ≤ 20× plain Python on every program for the
default runner (the walker's ratio is printed beside it for reference; it does not meet the goal).

The ``sys%`` column is kernel time as a share of the timed runs. On CPython 3.11 a recursion that keeps
crossing a frame-stack chunk boundary maps and unmaps a chunk per call (python/cpython#142183, fixed in
3.13+): fib's time can then double depending only on how deep the Python stack is when the run starts, so
a change in the evaluator's frame layout can move it either way. A high sys% flags that.

``--profile NAME`` runs one program under cProfile (in the calling thread: cProfile sees one thread only)
and prints the top functions by tottime.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viwoscript import Limits, syntax  # noqa: E402
from viwoscript.runtime import Runtime  # noqa: E402
from viwoscript.scope import Scope  # noqa: E402

GOAL = 20.0

# --- the programs ------------------------------------------------------------------------------------

FIB_N = 21

FIB = f"""
; recursive fib through lambdas
(std.let fib (std.lambda (n)
  (std.if (< n 2)
    n
    (+ (std.apply fib (- n 1)) (std.apply fib (- n 2))))))
(std.apply fib {FIB_N})
"""


def py_fib() -> int:
    def fib(n):
        if n < 2:
            return n
        return fib(n - 1) + fib(n - 2)

    return fib(FIB_N)


WHILE_N = 40_000

WHILE = f"""
; a long while loop with a little arithmetic
(std.let i 0)
(std.let total 0)
(std.while (< i {WHILE_N})
  (std.seq
    (std.set total (+ total (% i 7)))
    (std.set i (+ i 1))))
total
"""


def py_while() -> int:
    i = 0
    total = 0
    while i < WHILE_N:
        total = total + i % 7
        i = i + 1
    return total


LIST_N = 15_000

LIST = f"""
; build a list, then map / filter / reduce it with lambdas
(std.let xs (list.new))
(std.let i 0)
(std.while (< i {LIST_N})
  (std.seq
    (list.push xs i)
    (std.set i (+ i 1))))
(std.let squares (list.map xs (std.lambda (x) (* x x))))
(std.let odd (list.filter squares (std.lambda (x) (== (% x 2) 1))))
(list.reduce odd (std.lambda (acc x) (+ acc x)) 0)
"""


def py_list() -> int:
    xs = []
    i = 0
    while i < LIST_N:
        xs.append(i)
        i = i + 1
    squares = list(map(lambda x: x * x, xs))
    odd = list(filter(lambda x: x % 2 == 1, squares))
    acc = 0
    for x in odd:
        acc = acc + x
    return acc


STRING_N, STRING_ROW = 30_000, 50

STRING = f"""
; string building: str.concat in a loop (rows of {STRING_ROW} pieces, so copying stays linear)
(std.let rows (list.new))
(std.let row "")
(std.let i 0)
(std.while (< i {STRING_N})
  (std.seq
    (std.set row (str.concat row "item" i ";"))
    (std.set i (+ i 1))
    (std.if (== (% i {STRING_ROW}) 0)
      (std.seq (list.push rows row) (std.set row "")))))
(str.join rows "\\n")
"""


def py_string() -> str:
    rows = []
    row = ""
    i = 0
    while i < STRING_N:
        row = row + "item" + str(i) + ";"
        i = i + 1
        if i % STRING_ROW == 0:
            rows.append(row)
            row = ""
    return "\n".join(rows)


OBJECT_N = 15_000

OBJECT = f"""
; object get/set: a histogram keyed by i % 97
(std.let counts {{}})
(std.let i 0)
(std.while (< i {OBJECT_N})
  (std.seq
    (std.let key (str.concat "k" (% i 97)))
    (obj.set counts key (+ (obj.get counts key 0) i))
    (std.set i (+ i 1))))
counts
"""


def py_object() -> dict:
    counts = {}
    i = 0
    while i < OBJECT_N:
        key = "k" + str(i % 97)
        counts[key] = counts.get(key, 0) + i
        i = i + 1
    return counts


GRID_W, GRID_H = 180, 180

GRID = f"""
; nested std.for over ranges, grid arithmetic
(std.let range (std.lambda (n)
  (std.seq
    (std.let out (list.new))
    (std.let i 0)
    (std.while (< i n) (std.seq (list.push out i) (std.set i (+ i 1))))
    out)))
(std.let xs (std.apply range {GRID_W}))
(std.let ys (std.apply range {GRID_H}))
(std.let total 0)
(std.for y ys
  (std.for x xs
    (std.set total (+ total (- (* x y) (% (+ x y) 7))))))
total
"""


def py_grid() -> int:
    def range_(n):
        out = []
        i = 0
        while i < n:
            out.append(i)
            i = i + 1
        return out

    xs = range_(GRID_W)
    ys = range_(GRID_H)
    total = 0
    for y in ys:
        for x in xs:
            total = total + (x * y - (x + y) % 7)
    return total


SIEVE_N = 12_000

SIEVE = f"""
; sieve of Eratosthenes with list.get / list.set
(std.let n {SIEVE_N})
(std.let flags (list.new))
(std.let i 0)
(std.while (< i n) (std.seq (list.push flags true) (std.set i (+ i 1))))
(std.let count 0)
(std.let p 2)
(std.while (< p n)
  (std.seq
    (std.if (list.get flags p)
      (std.seq
        (std.set count (+ count 1))
        (std.let m (* p p))
        (std.while (< m n)
          (std.seq (list.set flags m false) (std.set m (+ m p))))))
    (std.set p (+ p 1))))
count
"""


def py_sieve() -> int:
    n = SIEVE_N
    flags = []
    i = 0
    while i < n:
        flags.append(True)
        i = i + 1
    count = 0
    p = 2
    while p < n:
        if flags[p]:
            count = count + 1
            m = p * p
            while m < n:
                flags[m] = False
                m = m + p
        p = p + 1
    return count


@dataclass(frozen=True)
class Program:
    name: str
    source: str
    python: Any
    what: str


PROGRAMS = [
    Program("fib", FIB, py_fib, f"recursive fib({FIB_N}) through std.lambda/std.apply"),
    Program("while", WHILE, py_while, f"std.while, {WHILE_N} iterations of arithmetic"),
    Program("list", LIST, py_list, f"list.push {LIST_N} items, then list.map/filter/reduce"),
    Program("string", STRING, py_string, f"str.concat in a loop, {STRING_N} pieces in rows, str.join"),
    Program("object", OBJECT, py_object, f"obj.get/obj.set histogram, {OBJECT_N} updates"),
    Program("grid", GRID, py_grid, f"nested std.for over {GRID_W}x{GRID_H} ranges"),
    Program("sieve", SIEVE, py_sieve, f"sieve of Eratosthenes to {SIEVE_N} with list.get/list.set"),
]
BY_NAME = {p.name: p for p in PROGRAMS}


# --- measuring ---------------------------------------------------------------------------------------

def best_of(fn, repeats: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def count_gas(rt: Runtime, tree, source: str) -> int:
    """Opcode evaluations of one run, counted with a large finite budget (the run is not timed)."""
    budget = 10**15
    ev = rt.evaluator(Limits(gas=budget), [], source=source)
    rt._run_evaluator(ev, tree, Scope(rt.globals))
    return int(ev.gas_used())


def measure(prog: Program, repeats: int, walker: bool = True) -> dict:
    from viwoscript.runners.compiled import compile_program

    rt = Runtime()
    limits = Limits(gas=None)
    # (the syntax module itself: Runtime.parse would answer from its cache after the first time)
    parse_s, _ = best_of(lambda: syntax.parse(prog.source, slots=rt.registry.slot_kind), repeats)
    tree = rt.parse(prog.source)
    compile_s, _ = best_of(lambda: compile_program(rt.registry, tree), repeats)
    whole = rt.run(prog.source, limits=limits)  # the text itself runs too, not only the parsed tree
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    vs_s, vs_result = best_of(lambda: rt.run(tree, limits=limits), repeats)
    sys_fraction = (resource.getrusage(resource.RUSAGE_SELF).ru_stime - r0.ru_stime) / (time.perf_counter() - t0)
    py_s, py_result = best_of(prog.python, repeats)
    ok = vs_result == py_result and whole == py_result and type(vs_result) is type(py_result)
    row = {"program": prog.name, "description": prog.what, "parse_s": parse_s, "compile_s": compile_s}
    if walker:
        walk_rt = Runtime(runner="tree")
        tree_s, tree_result = best_of(lambda: walk_rt.run(tree, limits=limits), repeats)
        ok = ok and tree_result == py_result and type(tree_result) is type(py_result)
        row.update(tree_s=tree_s, tree_ratio=tree_s / py_s)
    gas = count_gas(rt, tree, prog.source)
    return {
        **row,
        "viwoscript_s": vs_s,
        "python_s": py_s,
        "ratio": vs_s / py_s,
        "gas": gas,
        "gas_per_s": gas / vs_s,
        "sys_fraction": sys_fraction,
        "ok": ok,
        **({} if ok else {"viwoscript_result": repr(vs_result)[:200], "python_result": repr(py_result)[:200]}),
    }


def profile(prog: Program, top: int, runner: str = "compiled") -> str:
    rt = Runtime(runner=runner)
    tree = rt.parse(prog.source)
    ev = rt.evaluator(Limits(gas=None), [], source=prog.source)
    scope = Scope(rt.globals)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20_000))
    prof = cProfile.Profile()
    try:
        t = time.perf_counter()
        prof.enable()
        result = ev.run_program(tree, scope)
        prof.disable()
        elapsed = time.perf_counter() - t
    finally:
        sys.setrecursionlimit(old)
    expected = prog.python()
    out = io.StringIO()
    print(f"profile of {prog.name!r} ({prog.what}): {elapsed:.3f} s under cProfile, "
          f"result {'matches' if result == expected else 'DIFFERS from'} Python", file=out)
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def table(rows: list[dict]) -> str:
    head = (f"{'program':<8} {'parse ms':>9} {'compile ms':>10} {'viwo s':>8} {'python s':>9} {'ratio':>7} "
            f"{'Mgas/s':>7} {'sys%':>5} {'ok':>3} {'walker s':>9} {'walker':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        walk = (f" {r['tree_s']:>9.3f} {r['tree_ratio']:>6.1f}x" if "tree_s" in r else "")
        lines.append(f"{r['program']:<8} {r['parse_s'] * 1e3:>9.2f} {r['compile_s'] * 1e3:>10.2f} "
                     f"{r['viwoscript_s']:>8.3f} {r['python_s']:>9.4f} {r['ratio']:>6.1f}x "
                     f"{r['gas_per_s'] / 1e6:>7.2f} {r['sys_fraction'] * 100:>5.0f} {'yes' if r['ok'] else 'NO':>3}"
                     + walk)
    worst = max(rows, key=lambda r: r["ratio"])
    met = all(r["ratio"] <= GOAL and r["ok"] for r in rows)
    if any(r["sys_fraction"] > 0.1 for r in rows):
        lines.append("sys% > 10: kernel time, on CPython 3.11 usually recursion oscillating across a frame-stack "
                     "chunk boundary (mmap/munmap per call, python/cpython#142183); such a time shifts with "
                     "the stack depth the run starts at")
    lines.append(f"worst ratio: {worst['ratio']:.1f}x ({worst['program']}); goal (<= {GOAL:g}x plain Python on "
                 f"every program, default compiled runner): {'met' if met else 'NOT met'}")
    if all("tree_ratio" in r for r in rows):
        w = max(rows, key=lambda r: r["tree_ratio"])
        lines.append(f"reference tree-walker (--runner tree): worst {w['tree_ratio']:.1f}x ({w['program']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the best counts")
    ap.add_argument("--only", action="append", choices=sorted(BY_NAME), help="run only this program (repeatable)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results instead of the table")
    ap.add_argument("--profile", metavar="NAME", choices=sorted(BY_NAME), help="cProfile one program")
    ap.add_argument("--top", type=int, default=25, help="functions to list with --profile")
    ap.add_argument("--runner", choices=("compiled", "tree"), default="compiled", help="runner to --profile")
    ap.add_argument("--no-walker", action="store_true", help="skip timing the reference tree-walker")
    ns = ap.parse_args(argv)
    if ns.repeat < 1:
        ap.error("--repeat must be at least 1")
    if ns.profile:
        print(profile(BY_NAME[ns.profile], ns.top, ns.runner))
        return 0
    progs = [BY_NAME[n] for n in ns.only] if ns.only else PROGRAMS
    rows = []
    for prog in progs:
        if not ns.json:
            print(f"  {prog.name}: {prog.what}", file=sys.stderr, flush=True)
        rows.append(measure(prog, ns.repeat, walker=not ns.no_walker))
    worst = max(rows, key=lambda r: r["ratio"])
    met = all(r["ratio"] <= GOAL and r["ok"] for r in rows)
    if ns.json:
        print(json.dumps({"goal_ratio": GOAL, "repeat": ns.repeat, "python": sys.version.split()[0],
                          "programs": rows, "worst_ratio": worst["ratio"], "worst_program": worst["program"],
                          "goal_met": met, "all_ok": all(r["ok"] for r in rows)}, indent=2))
    else:
        print(table(rows))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
