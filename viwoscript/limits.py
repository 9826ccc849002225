"""Resource limits: gas, call depth, value sizes, wall-clock time.

The budget is host policy. :data:`EMBED_DEFAULTS` apply to programs that embed the interpreter and
run other people's scripts; the CLI runs one's own scripts with :data:`CLI_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    #: Opcode evaluations allowed per run (each costs one unit). ``None`` = unlimited.
    gas: int | None = 1_000_000
    #: Nested lambda calls.
    max_depth: int = 800
    #: Longest string, in code points.
    max_string: int = 10_000_000
    #: Most items in one list / keys in one object.
    max_list: int = 1_000_000
    max_object: int = 1_000_000
    #: Wall-clock seconds per run. ``None`` = no limit.
    timeout: float | None = None

    def with_(self, **changes) -> Limits:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


EMBED_DEFAULTS = Limits()
CLI_DEFAULTS = Limits(gas=100_000_000)
