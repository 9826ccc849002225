"""Samplers: the names scripts choose, the diffusers scheduler behind each, and A1111's names for them.

A script picks a sampler by our short name (``dpm++_2m_karras``) or by the name A1111 shows
(``DPM++ 2M Karras``, ``Euler a``, ``DPM++ 2M SDE``), or leaves it to the model. A1111's separate
"Schedule type" is the ``schedule_type`` option (``Karras``, ``Exponential``, ``Beta``, ``SGM Uniform``;
it sets diffusers' ``use_karras_sigmas``/``use_exponential_sigmas``/``use_beta_sigmas``/``timestep_spacing``)
and ``timestep_spacing`` (``leading``, ``trailing``, ``linspace``) is diffusers' own. Image metadata records
A1111's names (``Sampler: DPM++ 2M``, ``Schedule type: Karras``), read back from the scheduler that ran,
so A1111, Civitai and other readers of the ``parameters`` text understand it. Importing this module is
cheap (no torch, no diffusers).
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArgumentError, CapabilityError


@dataclass(frozen=True)
class Sampler:
    """One script sampler name: the diffusers class, its extra config, A1111's sampler name and the
    schedule type the name implies (``Karras`` for ``*_karras``), and a module it needs."""

    cls: str
    config: dict = field(default_factory=dict)
    a1111: str = ""
    schedule: str | None = None
    needs: str | None = None


_SDE = {"algorithm_type": "sde-dpmsolver++"}
#: Script name → :class:`Sampler` (the names of earlier versions all stay).
SAMPLER_SPECS: dict[str, Sampler] = {
    "ddim": Sampler("DDIMScheduler", {}, "DDIM"),
    "ddpm": Sampler("DDPMScheduler", {}, "DDPM"),
    "pndm": Sampler("PNDMScheduler", {}, "PLMS"),
    "lms": Sampler("LMSDiscreteScheduler", {}, "LMS"),
    "lms_karras": Sampler("LMSDiscreteScheduler", {}, "LMS", "Karras"),
    "euler": Sampler("EulerDiscreteScheduler", {}, "Euler"),
    "euler_karras": Sampler("EulerDiscreteScheduler", {}, "Euler", "Karras"),
    "euler_a": Sampler("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "heun": Sampler("HeunDiscreteScheduler", {}, "Heun"),
    "heun_karras": Sampler("HeunDiscreteScheduler", {}, "Heun", "Karras"),
    "dpm2": Sampler("KDPM2DiscreteScheduler", {}, "DPM2"),
    "dpm2_karras": Sampler("KDPM2DiscreteScheduler", {}, "DPM2", "Karras"),
    "dpm2_a": Sampler("KDPM2AncestralDiscreteScheduler", {}, "DPM2 a"),
    "dpm2_a_karras": Sampler("KDPM2AncestralDiscreteScheduler", {}, "DPM2 a", "Karras"),
    "dpm++_2m": Sampler("DPMSolverMultistepScheduler", {}, "DPM++ 2M"),
    "dpm++_2m_karras": Sampler("DPMSolverMultistepScheduler", {}, "DPM++ 2M", "Karras"),
    "dpm++_2m_sde": Sampler("DPMSolverMultistepScheduler", _SDE, "DPM++ 2M SDE"),
    "dpm++_2m_sde_karras": Sampler("DPMSolverMultistepScheduler", _SDE, "DPM++ 2M SDE", "Karras"),
    "dpm++_2m_sde_heun": Sampler("DPMSolverMultistepScheduler", {**_SDE, "solver_type": "heun"},
                                 "DPM++ 2M SDE Heun"),
    "dpm++_3m_sde": Sampler("DPMSolverMultistepScheduler", {**_SDE, "solver_order": 3}, "DPM++ 3M SDE"),
    "dpm++_2s": Sampler("DPMSolverSinglestepScheduler", {}, "DPM++ 2S a"),
    "dpm++_sde": Sampler("DPMSolverSDEScheduler", {}, "DPM++ SDE", None, "torchsde"),
    "dpm++_sde_karras": Sampler("DPMSolverSDEScheduler", {}, "DPM++ SDE", "Karras", "torchsde"),
    "unipc": Sampler("UniPCMultistepScheduler", {}, "UniPC"),
    "deis": Sampler("DEISMultistepScheduler", {}, "DEIS"),
    "lcm": Sampler("LCMScheduler", {}, "LCM"),
}

#: A1111 schedule type → the diffusers config it sets (``Automatic``/``Uniform``: the scheduler's own).
SCHEDULE_TYPES: dict[str, dict] = {
    "Automatic": {}, "Uniform": {},
    "Karras": {"use_karras_sigmas": True},
    "Exponential": {"use_exponential_sigmas": True},
    "Beta": {"use_beta_sigmas": True},
    "SGM Uniform": {"timestep_spacing": "trailing"},
}
#: Every spelling ``schedule_type`` takes (A1111's and lower-case ones) → the A1111 name.
SCHEDULE_NAMES: dict[str, str] = {**{k: k for k in SCHEDULE_TYPES},
                                  **{k.lower().replace(" ", "_"): k for k in SCHEDULE_TYPES}}
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")


def _a1111_aliases() -> dict[str, tuple[str, str | None]]:
    """A1111 sampler names (``DPM++ 2M Karras``, ``Euler a``, ...) → (script name, schedule type)."""
    out: dict[str, tuple[str, str | None]] = {}
    for name, s in SAMPLER_SPECS.items():
        if s.schedule is None:
            out.setdefault(s.a1111, (name, None))
    for name, s in SAMPLER_SPECS.items():  # A1111 before 1.9 wrote the schedule into the sampler's name
        if s.schedule is None and _supports(s.cls, "use_karras_sigmas"):
            out.setdefault(f"{s.a1111} Karras", (name, "Karras"))
            out.setdefault(f"{s.a1111} Exponential", (name, "Exponential"))
    out.setdefault("DPM++ 3M SDE Karras", ("dpm++_3m_sde", "Karras"))
    out.setdefault("DPM++ 3M SDE Exponential", ("dpm++_3m_sde", "Exponential"))
    return out


#: Which flags each diffusers scheduler class takes (read once from diffusers' signatures; kept here so
#: that checking a choice needs no import of diffusers).
_FLAGS: dict[str, frozenset[str]] = {
    "DDIMScheduler": frozenset({"timestep_spacing"}),
    "DDPMScheduler": frozenset({"timestep_spacing"}),
    "PNDMScheduler": frozenset({"timestep_spacing"}),
    "EulerAncestralDiscreteScheduler": frozenset({"timestep_spacing"}),
    "LCMScheduler": frozenset({"timestep_spacing"}),
    "DPMSolverSinglestepScheduler": frozenset({"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"}),
}
_SIGMA_FLAGS = frozenset({"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "timestep_spacing"})


def _supports(cls_name: str, flag: str) -> bool:
    return flag in _FLAGS.get(cls_name, _SIGMA_FLAGS)


A1111_SAMPLERS: dict[str, tuple[str, str | None]] = _a1111_aliases()
#: Every name the ``scheduler`` option takes: ours, then A1111's.
SAMPLER_NAMES: tuple[str, ...] = (*SAMPLER_SPECS, *(k for k in A1111_SAMPLERS if k not in SAMPLER_SPECS))
#: Script name → (diffusers class, extra config) — today's names only (the upscaler's choices).
SCHEDULERS: dict[str, tuple[str, dict]] = {k: (v.cls, dict(v.config)) for k, v in SAMPLER_SPECS.items()}
#: Kept for older imports: script name → (class, config, A1111 sampler, schedule type).
SAMPLERS: dict[str, tuple[str, dict, str, str | None]] = {k: (v.cls, dict(v.config), v.a1111, v.schedule)
                                                         for k, v in SAMPLER_SPECS.items()}


def lookup(name: str) -> tuple[str, str | None]:
    """A ``scheduler`` choice → ``(script name, schedule type)``: ours as they are, A1111's exactly or in
    any case (``dpm++ 2m karras``); unknown: ``ArgumentError``."""
    if name in SAMPLER_SPECS:
        return name, SAMPLER_SPECS[name].schedule
    if name in A1111_SAMPLERS:
        return A1111_SAMPLERS[name]
    folded = " ".join(str(name).split()).casefold()
    for table in (SAMPLER_SPECS, A1111_SAMPLERS):
        for key in table:
            if key.casefold() == folded:
                return lookup(key)
    raise ArgumentError(f"unknown sampler {name!r}",
                        hint="one of " + ", ".join(SAMPLER_NAMES[:12]) + ", ... (see docs/models.md, Schedulers)")


def schedule_name(schedule_type: str | None) -> str | None:
    """A ``schedule_type`` option → A1111's spelling (``karras`` → ``Karras``); None stays None."""
    if schedule_type is None:
        return None
    found = SCHEDULE_NAMES.get(schedule_type) or SCHEDULE_NAMES.get(str(schedule_type).lower().replace(" ", "_"))
    if found is None:
        raise ArgumentError(f"unknown schedule type {schedule_type!r}", hint="one of " + ", ".join(SCHEDULE_TYPES))
    return found


@dataclass(frozen=True)
class SchedulerChoice:
    """What one call asked for: ``cls`` None means the model's own scheduler class."""

    name: str | None
    cls: str | None
    config: dict
    a1111: str | None
    schedule: str | None
    needs: str | None = None


def choose(name: str | None, schedule_type: str | None = None, timestep_spacing: str | None = None,
           *, own_class: str | None = None, where: str = "scheduler") -> SchedulerChoice:
    """The scheduler class and config flags for a call's ``scheduler``/``schedule_type``/
    ``timestep_spacing`` options (``own_class``: the model's scheduler, used when ``name`` is None).
    A flag the class does not take is an ``ArgumentError`` naming the samplers that take it."""
    if name is None:
        spec = None
        cls, config, schedule = own_class, {}, None
    else:
        try:
            key, schedule = lookup(name)
        except ArgumentError as e:
            raise ArgumentError(f"{where}: {e.message}", hint=e.hint) from None
        spec = SAMPLER_SPECS[key]
        cls, config = spec.cls, dict(spec.config)
    explicit = schedule_name(schedule_type)
    if explicit is not None:
        schedule = explicit
    if schedule is not None:
        flags = SCHEDULE_TYPES[schedule]
        bad = [f for f in flags if cls is not None and not _supports(cls, f)]
        if bad:
            works = "Karras, Exponential and Beta work with Euler, LMS, Heun, DPM2, DPM++ and UniPC"
            if spec is None:  # no scheduler option: the model's own (PNDM/PLMS for most SD 1.x checkpoints)
                raise ArgumentError(f"{where}: schedule type {schedule!r} is not available with the model's own "
                                    f"scheduler ({cls}); no `scheduler` option was given",
                                    hint=f'name a sampler too, e.g. {{"scheduler" "DPM++ 2M" "schedule_type" '
                                         f'"{schedule}"}}; {works}')
            raise ArgumentError(f"{where}: schedule type {schedule!r} is not available with {spec.a1111}",
                                hint=f"{works}; or leave schedule_type out")
        config.update(flags)
    if timestep_spacing is not None:
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise ArgumentError(f"{where}: unknown timestep_spacing {timestep_spacing!r}",
                                hint="one of " + ", ".join(TIMESTEP_SPACINGS))
        if cls is not None and not _supports(cls, "timestep_spacing"):
            raise ArgumentError(f"{where}: {spec.a1111 if spec else cls} has no timestep_spacing setting")
        config["timestep_spacing"] = timestep_spacing
    return SchedulerChoice(name, cls, config, spec.a1111 if spec else None,
                           schedule if schedule not in (None, "Automatic") else None,
                           spec.needs if spec else None)


def build_scheduler(choice: SchedulerChoice, base_config: Any, fallback_cls: Any = None, *, seed: int | None = None):
    """A fresh diffusers scheduler for ``choice`` from the model's scheduler config ``base_config``.
    ``seed`` seeds the Brownian noise of ``DPM++ SDE`` (else each call would differ)."""
    import diffusers

    cls_name = choice.cls or str(base_config.get("_class_name", ""))
    cls = getattr(diffusers, cls_name, None) or fallback_cls
    if choice.needs and importlib.util.find_spec(choice.needs) is None:
        raise CapabilityError(f"sampler {choice.a1111!r} needs the {choice.needs} package, which is not installed",
                              hint=f"pip install {choice.needs}  (or pip install 'viwoscript[diffusion]')")
    config = dict(choice.config)
    params = inspect.signature(cls.__init__).parameters
    if "noise_sampler_seed" in params and seed is not None:
        config["noise_sampler_seed"] = seed
    unknown = [k for k in config if k not in params]
    if unknown:
        raise ArgumentError(f"scheduler: {cls.__name__} does not take {', '.join(unknown)}")
    return cls.from_config(base_config, **config)


#: A diffusers scheduler class (a model's own, when the script chose none) → A1111's sampler name.
CLASS_NAMES: dict[str, str] = {
    "DDIMScheduler": "DDIM", "DDPMScheduler": "DDPM", "PNDMScheduler": "PLMS", "LMSDiscreteScheduler": "LMS",
    "EulerDiscreteScheduler": "Euler", "EulerAncestralDiscreteScheduler": "Euler a",
    "HeunDiscreteScheduler": "Heun", "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DPMSolverSinglestepScheduler": "DPM++ 2S a", "DPMSolverSDEScheduler": "DPM++ SDE",
    "UniPCMultistepScheduler": "UniPC", "KDPM2DiscreteScheduler": "DPM2",
    "KDPM2AncestralDiscreteScheduler": "DPM2 a", "DEISMultistepScheduler": "DEIS", "LCMScheduler": "LCM",
}


def a1111_of(class_name: str | None, config: Any) -> dict:
    """``{"sampler", "schedule_type"?}``: A1111's names for a scheduler that ran (its class and config);
    unknown class: ``{}``."""
    sampler = CLASS_NAMES.get(class_name or "")
    if sampler is None:
        return {}
    if class_name == "DPMSolverMultistepScheduler" and str(_get(config, "algorithm_type") or "").startswith("sde-"):
        order = _get(config, "solver_order") or 2
        sampler = "DPM++ 3M SDE" if order == 3 else (
            "DPM++ 2M SDE Heun" if _get(config, "solver_type") == "heun" else "DPM++ 2M SDE")
    out = {"sampler": sampler}
    for schedule, flags in SCHEDULE_TYPES.items():
        if flags and all(_get(config, k) == v for k, v in flags.items()) and schedule != "SGM Uniform":
            out["schedule_type"] = schedule
            break
    return out


def a1111_names(name: str | None, class_name: str | None = None, config: Any = None,
                schedule_type: str | None = None) -> dict:
    """``{"sampler": ..., "schedule_type": ...}`` (A1111's names) for a script's sampler choice ``name``
    (and ``schedule_type`` option), else for the scheduler class the model uses (``class_name`` and its
    ``config``); unknown: ``{}``."""
    if class_name is not None:
        return a1111_of(class_name, config)
    if name is None:
        return {}
    try:
        choice = choose(name, schedule_type)
    except ArgumentError:
        return {}
    out = {"sampler": choice.a1111}
    if choice.schedule:
        out["schedule_type"] = choice.schedule
    return out


def _get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if isinstance(config, dict):
        return config.get(key)
    return getattr(config, key, None)
