"""Resource limits: gas, call depth, value sizes, wall-clock time.

The budget is host policy. :data:`EMBED_DEFAULTS` apply to programs that embed the interpreter and
run other people's scripts; the CLI runs one's own scripts with :data:`CLI_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Deepest lambda nesting the interpreter can honour (each call uses several Python frames).
MAX_DEPTH_CEILING = 10_000


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

    def __post_init__(self) -> None:
        def bad(name: str, value, what: str) -> ValueError:
            return ValueError(f"Limits: {name} must be {what}, got {value!r}")

        def whole(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if self.gas is not None and not (whole(self.gas) and self.gas >= 0):
            raise bad("gas", self.gas, "a whole number ≥ 0, or None for unlimited")
        if not (whole(self.max_depth) and 1 <= self.max_depth <= MAX_DEPTH_CEILING):
            raise bad("max_depth", self.max_depth, f"a whole number from 1 to {MAX_DEPTH_CEILING}")
        for name in ("max_string", "max_list", "max_object"):
            v = getattr(self, name)
            if not (whole(v) and v >= 1):
                raise bad(name, v, "a whole number ≥ 1")
        if self.timeout is not None and not (isinstance(self.timeout, int | float)
                                             and not isinstance(self.timeout, bool) and self.timeout > 0):
            raise bad("timeout", self.timeout, "a number of seconds > 0, or None for no limit")

    def with_(self, **changes) -> Limits:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


EMBED_DEFAULTS = Limits()
CLI_DEFAULTS = Limits(gas=100_000_000)
