"""Cold-start time of the `viwo` command, as a ratio to `python -c pass` measured in the same run.

    python benchmarks/startup.py            # table of medians and ratios
    python benchmarks/startup.py --check    # exit 1 if `viwo run examples/hello.viwo` exceeds the budget

Each command runs in a fresh process, interleaved round-robin so that machine load affects all of
them alike. The budget (issue 4): `viwo run examples/hello.viwo` cold in at most 0.25 s. The script
also lists which heavy modules that run imported (it should import none of them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 0.25
HEAVY = ("numpy", "PIL", "rich", "prompt_toolkit", "pygments", "torch", "diffusers", "pyvips", "cv2",
         "transformers")


def viwo_command() -> list[str]:
    script = Path(sys.executable).parent / "viwo"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "viwoscript"]


def measure(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def heavy_imports(env: dict) -> list[str]:
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr))\n"
        "from viwoscript.cli import main\n"
        "main(['run', 'examples/hello.viwo'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    return proc.stderr.split()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=15, help="runs per command (default 15)")
    ap.add_argument("--check", action="store_true", help=f"exit 1 if viwo run exceeds {BUDGET_S} s")
    opts = ap.parse_args()

    env = {**os.environ, "NO_COLOR": "1"}
    viwo = viwo_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import viwoscript'": [sys.executable, "-c", "import viwoscript"],
        "viwo --help": [*viwo, "--help"],
        "viwo eval '(+ 1 2)'": [*viwo, "eval", "(+ 1 2)"],
        "viwo run examples/hello.viwo": [*viwo, "run", "examples/hello.viwo"],
    }
    for cmd in commands.values():  # warm the OS file cache; Python bytecode caches are written once
        measure(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(opts.runs):
        for name, cmd in commands.items():
            times[name].append(measure(cmd, env))

    base = statistics.median(times["python -c pass"])
    print(f"{'command':<34} {'median':>8} {'min':>8} {'ratio':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<34} {med * 1000:7.1f}ms {min(ts) * 1000:7.1f}ms {med / base:6.1f}x")
    run = statistics.median(times["viwo run examples/hello.viwo"])
    verdict = "within" if run <= BUDGET_S else "OVER"
    print(f"\nviwo run examples/hello.viwo: {run:.3f} s median, {verdict} the {BUDGET_S} s budget "
          f"({run / base:.1f}x python -c pass on this machine, load {os.getloadavg()[0]:.2f})")
    heavy = heavy_imports(env)
    print("heavy modules imported by viwo run:", ", ".join(heavy) if heavy else "none")
    return 1 if opts.check and (run > BUDGET_S or heavy) else 0


if __name__ == "__main__":
    sys.exit(main())
