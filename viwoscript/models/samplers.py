"""Samplers: the names scripts choose, the diffusers scheduler behind each, and A1111's names for them.

A script picks a sampler by our short name (``dpm++_2m_karras``) or leaves it to the model. Image
metadata records A1111's names (``Sampler: DPM++ 2M``, ``Schedule type: Karras``), so A1111, Civitai
and other readers of the ``parameters`` text understand it. Importing this module is cheap (no torch).
"""

from __future__ import annotations

from typing import Any

#: Script name → (diffusers scheduler class, extra config, A1111 sampler name, A1111 schedule type or None).
SAMPLERS: dict[str, tuple[str, dict, str, str | None]] = {
    "ddim": ("DDIMScheduler", {}, "DDIM", None),
    "ddpm": ("DDPMScheduler", {}, "DDPM", None),
    "pndm": ("PNDMScheduler", {}, "PLMS", None),
    "lms": ("LMSDiscreteScheduler", {}, "LMS", None),
    "lms_karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}, "LMS", "Karras"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler", None),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a", None),
    "heun": ("HeunDiscreteScheduler", {}, "Heun", None),
    "dpm++_2m": ("DPMSolverMultistepScheduler", {}, "DPM++ 2M", None),
    "dpm++_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "DPM++ 2M", "Karras"),
    "dpm++_sde": ("DPMSolverSinglestepScheduler", {}, "DPM++ SDE", None),
    "dpm++_sde_karras": ("DPMSolverSinglestepScheduler", {"use_karras_sigmas": True}, "DPM++ SDE", "Karras"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC", None),
}
#: Script name → (diffusers class, extra config): what :meth:`ModelManager.scheduler` builds.
SCHEDULERS: dict[str, tuple[str, dict]] = {k: (v[0], v[1]) for k, v in SAMPLERS.items()}
#: A diffusers scheduler class (a model's own, when the script chose none) → A1111's sampler name.
CLASS_NAMES: dict[str, str] = {
    "DDIMScheduler": "DDIM", "DDPMScheduler": "DDPM", "PNDMScheduler": "PLMS", "LMSDiscreteScheduler": "LMS",
    "EulerDiscreteScheduler": "Euler", "EulerAncestralDiscreteScheduler": "Euler a",
    "HeunDiscreteScheduler": "Heun", "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DPMSolverSinglestepScheduler": "DPM++ SDE", "UniPCMultistepScheduler": "UniPC",
    "KDPM2DiscreteScheduler": "DPM2", "KDPM2AncestralDiscreteScheduler": "DPM2 a",
    "DEISMultistepScheduler": "DEIS", "LCMScheduler": "LCM",
}


def a1111_names(name: str | None, class_name: str | None = None, config: Any = None) -> dict:
    """``{"sampler": ..., "schedule_type": ...}`` (A1111's names) for a script's sampler choice ``name``,
    else for the scheduler class the model uses (``class_name`` and its ``config``); unknown: ``{}``."""
    if name is not None:
        if name not in SAMPLERS:
            return {}
        _, _, sampler, schedule = SAMPLERS[name]
    else:
        sampler = CLASS_NAMES.get(class_name or "")
        if sampler is None:
            return {}
        karras = bool(_get(config, "use_karras_sigmas"))
        schedule = "Karras" if karras else None
    out = {"sampler": sampler}
    if schedule:
        out["schedule_type"] = schedule
    return out


def _get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if isinstance(config, dict):
        return config.get(key)
    return getattr(config, key, None)
