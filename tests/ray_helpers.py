"""Capabilities for the Ray executor tests and benchmarks/executor.py: a call that sleeps (simulated GPU work,
interruptible between its steps, reporting where and when it ran) and a call that kills its worker."""

from __future__ import annotations

import os
import time
from pathlib import Path

from viwoscript.capabilities import Capability, ParamSpec, method


class Sleeper(Capability):
    type = "test.sleep"
    label = "Sleeper"

    @method("nap", ParamSpec("seconds", "number", 0.2, min=0, max=60), ParamSpec("steps", "integer", 4, min=1, max=1000),
            ParamSpec("tag", "any", None), positional=0, returns="object")
    def nap(self, ctx, seconds, steps, tag):
        """Sleep `seconds` in `steps` steps (an interrupt stops it between steps); {start end pid tag}."""
        start = time.time()
        for i in range(steps):
            ctx.check_interrupt()
            time.sleep(seconds / steps)
            ctx.progress(i + 1, steps, "nap")
        ctx.log(f"napped {seconds} s")
        return {"start": start, "end": time.time(), "pid": os.getpid(), "tag": tag}

    @method("die", ParamSpec("mode", "string", "always", choices=("always", "once", "never")),
            ParamSpec("marker", "string", ""), positional=0, returns="number")
    def die(self, ctx, mode, marker):
        """Kill this process (mode once: only when `marker` does not exist yet, creating it)."""
        if mode == "always" or (mode == "once" and not Path(marker).exists()):
            if mode == "once":
                Path(marker).write_text("died")
            os._exit(3)
        return os.getpid()


GRANTS = ["test.sleep", "diffusers.generate"]
