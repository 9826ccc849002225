"""Declaring a capability: :class:`Capability`, :func:`method`, :class:`ParamSpec`, :class:`Limit`.

A capability is a class with a dotted ``type``, a label, the grant parameters (limits) it understands
and its methods, each declared with ``@method(...)``. Binding, validation, limits, the compute budget,
metadata, REPL help and docs all derive from these declarations::

    class Echo(Capability):
        type = "demo.echo"
        label = "Echo"
        limits = (Limit("max_length", "number", 100, "Longest text accepted", kind="max"),)

        @method("say", ParamSpec("text", "string", limit="max_length_text"), returns="string")
        def say(self, ctx, text):
            '''Return the text.'''
            return text

Scripts reach methods only through ``std.call_method`` (see :mod:`viwoscript.capabilities.manager`);
the call context travels out of band, as the first argument after ``self``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import CapabilityError
from ..opcodes import REQUIRED
from ..values import to_display

#: A capability type: dotted words, e.g. ``diffusers.generate``.
TYPE_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\Z")
#: Value types a method parameter may declare.
PARAM_TYPES = ("any", "string", "number", "integer", "boolean", "image", "array", "object", "capability")
#: How a grant parameter narrows under ``delegate`` (see :mod:`viwoscript.capabilities.grants`).
LIMIT_KINDS = ("max", "min", "subset", "path", "paths", "domain", "namespace", "flag", "allow", "exact")
MAX_SEED = 2**32 - 1


def _snake(name: str) -> str:
    """``numInferenceSteps`` → ``num_inference_steps`` (snake_case names pass through)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


# --- grant parameters ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Limit:
    """A grant parameter a capability understands (``max_width``, ``allowed_models``, ``namespace``...).

    ``default`` applies when a grant does not set it (``None`` means unlimited); ``kind`` says how it
    narrows when a script delegates (``max``: lower or equal; ``subset``: fewer items; ``path``: a
    sub-path; ``namespace``: a sub-namespace on a ``.`` boundary; ``flag``: ``true`` restricts;
    ``allow``: ``false`` restricts; ``exact``: cannot change).
    """

    name: str
    type: str = "number"
    default: Any = None
    description: str = ""
    kind: str = "max"

    def __post_init__(self) -> None:
        if self.kind not in LIMIT_KINDS:
            raise ValueError(f"Limit {self.name!r}: unknown kind {self.kind!r} (one of {', '.join(LIMIT_KINDS)})")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def to_metadata(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "kind": self.kind}
        if self.description:
            d["description"] = self.description
        if not self.required:
            d["default"] = self.default
        return d


#: The standard limits of model-running capabilities (design §7), with their documented defaults.
ALLOWED_MODELS = Limit("allowed_models", "array", None,
                       "Model ids or aliases the script may use (null: any model the host configured)",
                       kind="subset")
ALLOWED_LORAS = Limit("allowed_loras", "array", None,
                      "LoRA names (file names in the host's lora_dir, without .safetensors) the script may use "
                      "(null: every LoRA the host has)", kind="subset")
MAX_WIDTH = Limit("max_width", "number", 2048, "Widest image a method may produce, in pixels")
MAX_HEIGHT = Limit("max_height", "number", 2048, "Tallest image a method may produce, in pixels")
MAX_PIXELS = Limit("max_pixels", "number", 2048 * 2048, "Most pixels (width × height) in one image")
MAX_STEPS = Limit("max_steps", "number", 150, "Most denoising steps in one call")
MAX_COMPUTE = Limit("max_compute", "number", 250,
                    "Largest compute cost of one call: width × height × steps that run × batch / 1e6")
MAX_BATCH = Limit("max_batch", "number", 8, "Most images in one call")
MODEL_LIMITS = (ALLOWED_MODELS, ALLOWED_LORAS, MAX_WIDTH, MAX_HEIGHT, MAX_PIXELS, MAX_STEPS, MAX_COMPUTE, MAX_BATCH)


# --- method parameters ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a capability method.

    ``type`` is one of :data:`PARAM_TYPES` (``integer`` accepts integral numbers). ``min``/``max``
    bound numbers (inclusive), ``choices`` lists allowed values, ``aliases`` are other accepted option
    names (camelCase keys are converted to snake_case before matching), ``limit`` names the grant
    parameter that bounds the value (a ``max`` limit: value ≤ limit; a ``subset`` limit: value in the
    list), ``multiple_of`` rounds numbers down to a multiple (sizes to 8) with a warning, ``fields``
    describes the keys of an object parameter.
    """

    name: str
    type: str = "any"
    default: Any = REQUIRED
    description: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    aliases: tuple[str, ...] = ()
    limit: str | None = None
    multiple_of: int | None = None
    fields: tuple[ParamSpec, ...] = ()
    label: str = ""

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"ParamSpec {self.name!r}: unknown type {self.type!r} (one of {', '.join(PARAM_TYPES)})")

    @property
    def optional(self) -> bool:
        return self.default is not REQUIRED

    def keys(self) -> tuple[str, ...]:
        """Every snake_case option name that binds to this parameter."""
        return (self.name, *(_snake(a) for a in self.aliases))

    def to_metadata(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": "number" if self.type == "integer" else self.type}
        if self.description:
            d["description"] = self.description
        if self.optional:
            d["optional"] = True
            if self.default is not None:
                d["default"] = self.default
        if self.fields:
            d["fields"] = [f.to_metadata() for f in self.fields]
        if self.choices:
            d["choices"] = list(self.choices)
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        return d


@dataclass(frozen=True)
class Workload:
    """What a model-running call will do, computed host-side before anything loads.

    ``steps`` is what the script asked for (checked against ``max_steps``); ``effective_steps`` is what
    really runs (``strength × steps`` for img2img) and enters the compute cost.
    """

    width: int
    height: int
    steps: int
    effective_steps: int | None = None
    batch: int = 1

    @property
    def compute(self) -> float:
        steps = self.steps if self.effective_steps is None else self.effective_steps
        return self.width * self.height * steps * self.batch / 1e6

    def explain(self) -> str:
        steps = self.steps if self.effective_steps is None else self.effective_steps
        batch = f" × batch {self.batch}" if self.batch != 1 else ""
        return f"{self.width}×{self.height} × {steps} steps{batch} / 1e6"


def image_workload(width: str = "width", height: str = "height", steps: str = "steps", *,
                   image: str | None = None, strength: str | None = None,
                   batch: str | None = None) -> Callable[[dict], Workload]:
    """A ``workload`` function for the usual parameter names.

    Size comes from the ``width``/``height`` arguments, else from the ``image`` argument; with
    ``strength`` only ``int(steps × strength)`` steps run (as in diffusers' img2img).
    """

    def workload(args: dict) -> Workload:
        img = args.get(image) if image else None
        w = args.get(width)
        h = args.get(height)
        if w is None:
            w = getattr(img, "width", 0)
        if h is None:
            h = getattr(img, "height", 0)
        n = int(args.get(steps) or 0)
        eff = None
        if strength is not None and args.get(strength) is not None:
            eff = min(int(n * float(args[strength])), n)
        b = int(args.get(batch) or 1) if batch else 1
        return Workload(int(w), int(h), n, eff, b)

    return workload


@dataclass(frozen=True)
class MethodSpec:
    """One method a script may call through ``std.call_method``.

    The first ``positional`` parameters may be given positionally; the others only in the trailing
    options object (the original's ``textToImage(prompt, options)`` convention). ``workload`` maps the
    bound arguments to a :class:`Workload` for the size limits and the compute budget.
    """

    name: str
    fn: Callable = field(compare=False, repr=False)
    params: tuple[ParamSpec, ...] = ()
    positional: int | None = None
    returns: str = "any"
    label: str = ""
    description: str = ""
    workload: Callable[[dict], Workload] | None = field(default=None, compare=False, repr=False)
    options_name: str = "options"
    options_description: str = "Optional settings (camelCase or snake_case keys)"

    @property
    def n_positional(self) -> int:
        return len(self.params) if self.positional is None else self.positional

    @property
    def extra_params(self) -> tuple[ParamSpec, ...]:
        """Options the framework adds (``max_compute`` for methods with a workload)."""
        return (SCRIPT_MAX_COMPUTE,) if self.workload is not None else ()

    @property
    def all_params(self) -> tuple[ParamSpec, ...]:
        return self.params + self.extra_params

    @property
    def option_params(self) -> tuple[ParamSpec, ...]:
        return self.params[self.n_positional:] + self.extra_params

    def signature(self) -> str:
        parts = []
        for p in self.params[:self.n_positional]:
            parts.append(p.name + ("?" if p.optional else ""))
        if self.option_params:
            parts.append("{" + ", ".join(p.name for p in self.option_params) + "}?")
        return f"{self.name}({', '.join(parts)}) -> {self.returns}"

    def to_metadata(self) -> dict:
        params = [p.to_metadata() for p in self.params[:self.n_positional]]
        options = self.option_params
        if options:
            params.append({"name": self.options_name, "type": "object", "description": self.options_description,
                           "optional": True, "fields": [p.to_metadata() for p in options]})
        return {"name": self.name, "label": self.label or self.name, "description": self.description,
                "parameters": params, "returnType": self.returns}


#: Every method with a workload also accepts ``max_compute`` in its options: a script may lower its own
#: budget below the grant's (the original took it as an option), never raise it.
SCRIPT_MAX_COMPUTE = ParamSpec("max_compute", "number", None, "Refuse to run above this compute cost "
                               "(can only lower the grant's max_compute)", min=0)


def method(name: str, *params: ParamSpec, positional: int | None = None, returns: str = "any", label: str = "",
           workload: Callable[[dict], Workload] | None = None, options_name: str = "options") -> Callable:
    """Declare a capability method; the function's docstring is its description.

    The function is called as ``fn(self, ctx, **arguments)`` with every declared parameter bound.
    """

    def deco(fn: Callable) -> Callable:
        doc = " ".join((fn.__doc__ or "").split())
        fn.method_spec = MethodSpec(name, fn, tuple(params), positional, returns, label, doc, workload,
                                    options_name)
        return fn

    return deco


# --- the capability base class -------------------------------------------------------------------

class Capability:
    """Base of every capability. Subclass it, set the class attributes, declare methods with ``@method``.

    One instance serves one Runtime (a host may pass a configured instance to ``Runtime(capabilities=)``;
    entry-point classes are instantiated with no arguments). Host configuration such as model paths
    lives on the instance and never reaches scripts; grant parameters (limits) reach methods through
    ``ctx.params``.
    """

    #: Dotted type name scripts ask for with ``get_capability``.
    type: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Which implementation this is ("diffusers", "fake", ...): shown by ``viwo caps``, pinned by a grant.
    provider: ClassVar[str] = "builtin"
    #: A fake stands in for its type only when no real implementation is available (or a grant names it).
    fake: ClassVar[bool] = False
    #: Whether ``grants="default"`` (the CLI with no config) grants it.
    default_grant: ClassVar[bool] = True
    #: Grant parameters understood, with their default values.
    limits: ClassVar[tuple[Limit, ...]] = ()
    #: Importable modules it needs, and the pip extra that provides them.
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    #: Collected from ``@method`` declarations (including inherited ones).
    methods: ClassVar[dict[str, MethodSpec]] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        found: dict[str, tuple[str, MethodSpec]] = {}
        for klass in reversed(cls.__mro__):
            for attr_name, attr in vars(klass).items():
                spec = getattr(attr, "method_spec", None)
                if isinstance(spec, MethodSpec):
                    found[spec.name] = (attr_name, spec)
        methods: dict[str, MethodSpec] = {}
        for name, (attr_name, spec) in found.items():
            impl = vars_lookup(cls, attr_name)
            if impl is not None and impl is not spec.fn and getattr(impl, "method_spec", None) is None:
                # an override without a declaration of its own implements the inherited declaration
                # (one declaration per capability type; the fake and the real one both implement it)
                spec = dataclasses.replace(spec, fn=impl)
            _check_signature(cls, spec)
            methods[name] = spec
        cls.methods = methods

    # --- availability ---------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> str | None:
        """``None`` when usable on this machine, else the reason (with an install hint)."""
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        if missing:
            hint = f": pip install 'viwoscript[{cls.extra}]'" if cls.extra else ""
            return f"needs {', '.join(missing)}{hint}"
        return None

    @classmethod
    def available_for(cls, args: dict) -> str | None:
        """Like :meth:`availability`, for one call's bound arguments: a real implementation that is
        unavailable in general may still serve some calls (``diffusers.generate`` with no default model
        serves a script that names its model), and then the fake never stands in for it."""
        return cls.availability()

    @classmethod
    def limit_specs(cls) -> dict[str, Limit]:
        return {lim.name: lim for lim in cls.limits}

    # --- lifecycle ------------------------------------------------------------------------------
    def load(self, ctx: CallContext) -> None:
        """Prepare heavy state before the first method call (optional)."""

    def unload(self) -> None:
        """Release heavy state (optional)."""

    # --- checks before any heavy work -----------------------------------------------------------
    def check_inputs(self, ctx: CallContext, spec: MethodSpec, args: dict) -> None:
        """Enforce the grant's limits on bound arguments before anything loads.

        The default checks every ``ParamSpec.limit`` (a default value above a ``max`` limit is lowered to
        it; a value the script gave is an error) and, for methods with a workload, ``max_width``,
        ``max_height``, ``max_pixels``, ``max_steps``, ``max_batch`` and ``max_compute``. Override to add
        checks (call ``super()``).
        """
        params = ctx.params
        where = f"{self.type}.{spec.name}"
        for p in spec.params:
            if p.limit and p.limit in params:
                limit = params[p.limit]
                value = args.get(p.name)
                if p.name in ctx.defaulted and _is_number(value) and _is_number(limit) and value > limit:
                    args[p.name] = value = type(value)(limit)  # a default never exceeds the grant
                _check_param_limit(where, p, value, p.limit, limit)
        if spec.workload is None:
            return
        work = spec.workload(args)
        for value, name, what in ((work.width, "max_width", "width"), (work.height, "max_height", "height"),
                                  (work.width * work.height, "max_pixels", "pixel count"),
                                  (work.steps, "max_steps", "steps"), (work.batch, "max_batch", "batch size")):
            limit = params.get(name)
            if limit is not None and value > limit:
                raise CapabilityError(f"{where}: {what} {_num(value)} exceeds this grant's {name} of {_num(limit)}",
                                      hint=_LIMIT_HINT.format(name=name))
        cost = work.compute
        limit = params.get("max_compute")
        own = args.get("max_compute")
        for lim, whose in ((limit, "this grant's max_compute"), (own, "the max_compute you passed")):
            if lim is not None and cost > lim:
                raise CapabilityError(f"{where}: compute cost {cost:.4g} ({work.explain()}) exceeds {whose} of "
                                      f"{_num(lim)}", hint="use a smaller size, fewer steps or a smaller batch"
                                      + ("" if whose.startswith("the") else "; " + _LIMIT_HINT.format(name="max_compute")))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type} ({self.provider})>"


_LIMIT_HINT = "the host sets {name} in the grant ([[grants]] params in viwo.toml, or Runtime(grants=...))"


def _num(v: Any) -> str:
    return to_display(v) if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def _check_param_limit(where: str, p: ParamSpec, value: Any, name: str, limit: Any) -> None:
    if value is None or limit is None:
        return
    if isinstance(limit, list):
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not any(_same(v, allowed) for allowed in limit):
                raise CapabilityError(f"{where}: {p.name} {to_display(v)} is not allowed by this grant's {name}",
                                      hint="allowed: " + (", ".join(to_display(a) for a in limit) or "nothing")
                                      + "; " + _LIMIT_HINT.format(name=name))
    elif isinstance(limit, int | float) and isinstance(value, int | float) and value > limit:
        raise CapabilityError(f"{where}: {p.name} {_num(value)} exceeds this grant's {name} of {_num(limit)}",
                              hint=_LIMIT_HINT.format(name=name))


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, int | float) and isinstance(b, int | float)
                                             and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def vars_lookup(cls: type, name: str) -> Any:
    """The attribute ``name`` as the class body nearest to ``cls`` defines it (no descriptor binding)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def declared(fn: Callable) -> Callable:
    """Mark a declaration's method body: implementations override it (see :func:`method`)."""
    fn.declaration_only = True
    return fn


def _check_signature(cls: type, spec: MethodSpec) -> None:
    """A declaration and its function must agree: every declared name is a keyword of the function."""
    sig = inspect.signature(spec.fn)
    names = list(sig.parameters)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    missing = [p.name for p in spec.params if p.name not in names[2:]]
    if missing:
        raise TypeError(f"{cls.__name__}.{spec.fn.__name__} (method {spec.name!r}) does not accept declared "
                        f"parameter(s) {', '.join(missing)}; its signature must be (self, ctx, <params>)")


# --- the call context ----------------------------------------------------------------------------

class CallContext:
    """What a method gets out of band: the runtime, progress and interrupt, the grant's params, seeds.

    Never visible to scripts.
    """

    __slots__ = ("runtime", "ev", "capability", "method", "params", "handle", "manager", "defaulted")

    def __init__(self, runtime, ev, capability: Capability, method: str, params: dict, handle=None,
                 manager=None):
        self.runtime = runtime
        self.ev = ev
        self.capability = capability
        self.method = method
        self.params = params
        self.handle = handle
        self.manager = manager
        #: Names of the parameters the script left out (bound to their defaults).
        self.defaulted: set[str] = set()

    def check_interrupt(self) -> None:
        """Raise if the run was interrupted or timed out (call between steps of long work)."""
        if self.ev is not None:
            self.ev.check_interrupt()

    def progress(self, step: int, total: int, task: str | None = None) -> None:
        """Report ``step`` of ``total`` to the host (``{"type": "progress", ...}``), then honour interrupt."""
        self.runtime.emit({"type": "progress", "task": task or self.method, "step": int(step), "total": int(total)})
        self.check_interrupt()

    def emit(self, event: dict) -> None:
        self.runtime.emit(event)

    def log(self, message: str) -> None:
        self.runtime.emit({"type": "log", "message": message})

    def warn(self, message: str) -> None:
        self.runtime.emit({"type": "warn", "message": message})

    @staticmethod
    def seed(seed: int | None) -> int:
        """The given seed, or a fresh random one (which the method must report back)."""
        return int(seed) if seed is not None else secrets.randbelow(MAX_SEED + 1)
