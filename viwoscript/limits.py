"""Resource limits: gas, call depth, value sizes, memory, wall-clock time — and the :class:`Meter` that
counts what one traversal of a value (to text, JSON, display, copy) visits against them.

The budget is host policy. :data:`EMBED_DEFAULTS` apply to programs that embed the interpreter and
run other people's scripts; the CLI runs one's own scripts with :data:`CLI_DEFAULTS`.
"""

from __future__ import annotations

import time
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
    #: Most values one traversal of a value visits (converting it to text or JSON, printing it, copying
    #: it): a list shared into itself many times is walked once per reference.
    max_nodes: int = 10_000_000
    #: Bytes of memory a run's values may take: images while the run holds them, strings of 1 MiB or
    #: more and lists of 65,536 items or more as they are made. ``None`` = unlimited.
    max_memory: int | None = 4 * 1024**3
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
        for name in ("max_string", "max_list", "max_object", "max_nodes"):
            v = getattr(self, name)
            if not (whole(v) and v >= 1):
                raise bad(name, v, "a whole number ≥ 1")
        if self.max_memory is not None and not (whole(self.max_memory) and self.max_memory >= 1):
            raise bad("max_memory", self.max_memory, "a whole number of bytes ≥ 1, or None for unlimited")
        if self.timeout is not None and not (isinstance(self.timeout, int | float)
                                             and not isinstance(self.timeout, bool) and self.timeout > 0):
            raise bad("timeout", self.timeout, "a number of seconds > 0, or None for no limit")

    def with_(self, **changes) -> Limits:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


EMBED_DEFAULTS = Limits()
CLI_DEFAULTS = Limits(gas=100_000_000)

#: Values a traversal visits between two looks at the gas, the clock and the interrupt flag.
WALK_POLL = 2048
#: Values a traversal visits per unit of gas.
NODES_PER_GAS = 100


class Budget:
    """What host-side work outside a run answers to (printing a result, writing metadata): the limits, a
    fresh deadline from ``limits.timeout`` and an interrupt flag. A run's evaluator plays the same part
    (``limits``, ``charge()``, ``check_interrupt()``) inside a run."""

    def __init__(self, limits: Limits | None = None, op: str = "the host's work"):
        self.limits = limits or EMBED_DEFAULTS
        self.op = op
        self.deadline = time.monotonic() + self.limits.timeout if self.limits.timeout else None
        self.interrupted = False

    def charge(self, units: int = 1) -> None:
        """Host-side work spends no script gas."""

    def check_interrupt(self) -> None:
        from .errors import InterruptedError_, TimeoutLimitError

        if self.interrupted:
            raise InterruptedError_(f"{self.op}: interrupted", hint="the host stopped the work (Ctrl-C)")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutLimitError(f"{self.op}: timed out after {self.limits.timeout:g} s",
                                    hint="raise the limit (--timeout, Limits(timeout=...))")


class Meter:
    """Counts the values one traversal visits and the text it writes.

    Traversals subtract from ``left`` as they go (a container costs its length plus one) and call
    :meth:`poll` when it runs out: every :data:`WALK_POLL` values the visit is charged to ``budget`` (a
    run's evaluator or a :class:`Budget`) as gas, the clock and the interrupt flag are checked, and the
    total is held to ``max_nodes``. Text written is held to ``max_string`` through ``chars``.
    """

    __slots__ = ("budget", "op", "left", "visited", "max_nodes", "chars", "max_chars", "_gas")

    def __init__(self, budget=None, op: str = "value"):
        self.budget = budget
        limits = getattr(budget, "limits", None) or EMBED_DEFAULTS
        self.op = op
        self.left = WALK_POLL
        self.visited = 0
        self.max_nodes = limits.max_nodes
        self.chars = 0
        self.max_chars = limits.max_string
        self._gas = 0

    def poll(self) -> None:
        n = WALK_POLL - self.left
        self.left = WALK_POLL
        self.visited += n
        if self.visited > self.max_nodes:
            from .errors import SizeLimitError

            raise SizeLimitError(f"{self.op}: the value has more than {self.max_nodes:,} parts to visit "
                                 "(a list or object shared into itself many times?)",
                                 hint="work on a smaller part of it, or raise Limits(max_nodes=...)")
        self._settle(n)
        if self.budget is not None:
            self.budget.check_interrupt()

    def _settle(self, n: int) -> None:
        budget = self.budget
        if budget is not None:
            units, self._gas = divmod(self._gas + n, NODES_PER_GAS)
            charge = budget.charge
            for _ in range(units):
                charge()

    def done(self) -> None:
        """Charge the values visited since the last poll (the traversal finished)."""
        n = WALK_POLL - self.left
        self.left = WALK_POLL
        self.visited += n
        self._settle(n)

    def too_long(self) -> Exception:
        from .errors import SizeLimitError

        return SizeLimitError(f"{self.op}: text of more than {self.max_chars:,} characters exceeds the limit",
                              hint="convert a smaller part of the value, or raise Limits(max_string=...)")


#: Strings this long (code points) and lists this long (items) count against ``max_memory`` when made.
BIG_STRING = 1 << 20
BIG_LIST = 1 << 16


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"  # pragma: no cover


class Memory:
    """A run's memory budget (``Limits.max_memory``): images count while the run holds them (given back
    when they are freed), big strings and lists count as they are made."""

    __slots__ = ("limit", "used", "images", "__weakref__")

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.images: dict[int, int] = {}  # id of a pixel buffer -> its bytes

    def charge(self, nbytes: int, op: str, what: str) -> None:
        if self.used + nbytes > self.limit:
            from .errors import MemoryLimitError

            raise MemoryLimitError(
                f"{op}: {what} ({_size(nbytes)}) would take the run past its memory budget of "
                f"{_size(self.limit)} ({_size(self.used)} in use)",
                hint="keep fewer or smaller images at once (save them, drop the references), or raise "
                     "Limits(max_memory=...) / [limits] max_memory")
        self.used += nbytes

    def image(self, image, op: str) -> None:
        """Count an image's pixels until the buffer is freed (an image seen before costs nothing)."""
        import weakref

        pixels = getattr(image, "pixels", None)
        if pixels is None or id(pixels) in self.images:
            return
        nbytes = int(pixels.nbytes)
        self.charge(nbytes, op, f"a {image.width}×{image.height} image")
        self.images[id(pixels)] = nbytes
        weakref.finalize(pixels, Memory._release, weakref.ref(self), id(pixels))

    @staticmethod
    def _release(ref, key: int) -> None:
        self = ref()
        if self is not None:
            self.used -= self.images.pop(key, 0)

    def values(self, value, op: str) -> None:
        """Count the images in an opcode's result (the value itself, or the items of a list or object)."""
        items = value if type(value) is list else value.values() if type(value) is dict else (value,)
        for v in items:
            if getattr(v, "type_name", None) == "image":
                self.image(v, op)


def memory_of(ev) -> Memory | None:
    """The run's :class:`Memory` (made on first use), or None when it has no memory limit."""
    d = getattr(ev, "__dict__", None)
    if d is None:
        return None
    m = d.get("_memory")
    if m is None:
        limit = getattr(getattr(ev, "limits", None), "max_memory", None)
        if limit is None:
            return None
        m = d["_memory"] = Memory(limit)
    return m


def made_image(ev, value, op: str):
    """Count the images an opcode returns against the run's memory budget; returns ``value``."""
    m = memory_of(ev)
    if m is not None:
        m.values(value, op)
    return value


def made_string(ev, s: str, op: str) -> str:
    if len(s) >= BIG_STRING:
        m = memory_of(ev)
        if m is not None:
            m.charge(len(s) * (1 if s.isascii() else 4), op, f"a string of {len(s):,} characters")
    return s


def made_list(ev, n: int, op: str, chunks: int = 1) -> None:
    """A list grew to ``n`` items, past ``chunks`` multiples of :data:`BIG_LIST`: they count as made."""
    m = memory_of(ev)
    if m is not None:
        m.charge(8 * BIG_LIST * chunks, op, f"a list of {n:,} items")


def images_made_by(fn, op: str):
    """``fn`` (an opcode's function) with the images it returns counted against the run's memory budget."""
    import functools

    @functools.wraps(fn)
    def counted(ev, *args):
        return made_image(ev, fn(ev, *args), op)

    return counted
