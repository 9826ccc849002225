"""Samplers by the names people use (viwoscript/models/samplers.py): our names and A1111's map onto diffusers
schedulers with the right flags, schedule types and timestep spacing reach the scheduler, A1111's names are
read back from the scheduler that ran."""

from __future__ import annotations

import pytest

from viwoscript.errors import ArgumentError
from viwoscript.models.samplers import (
    A1111_SAMPLERS,
    SAMPLER_NAMES,
    SAMPLER_SPECS,
    a1111_names,
    a1111_of,
    choose,
    lookup,
)

#: A1111 sampler name → (diffusers class, flags that must be set on the scheduler's config).
MAPPINGS = {
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": "dpmsolver++"}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++"}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": False}),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++",
                                                            "use_karras_sigmas": True}),
    "DPM++ 2M SDE Exponential": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++",
                                                                 "use_exponential_sigmas": True}),
    "DPM++ 2M SDE Heun": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_type": "heun"}),
    "DPM++ 3M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}),
    "DPM++ 2S a": ("DPMSolverSinglestepScheduler", {}),
    "DPM++ SDE": ("DPMSolverSDEScheduler", {"use_karras_sigmas": False}),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
}

#: An SD1.5-like scheduler config (what a model's scheduler_config.json holds).
BASE = {"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000, "steps_offset": 1, "set_alpha_to_one": False, "skip_prk_steps": True,
        "timestep_spacing": "leading", "prediction_type": "epsilon"}


def build(name, schedule_type=None, timestep_spacing=None, seed=None):
    from viwoscript.models.samplers import build_scheduler

    return build_scheduler(choose(name, schedule_type, timestep_spacing, own_class="PNDMScheduler"), BASE, seed=seed)


def test_every_a1111_name_is_a_choice_and_today_s_names_stay():
    for name in ("euler", "euler_a", "dpm++_2m_karras", "dpm++_sde", "lms_karras", "unipc", "ddim", "pndm"):
        assert name in SAMPLER_NAMES and lookup(name)[0] == name
    for name in MAPPINGS:
        assert name in SAMPLER_NAMES, name
    assert lookup("dpm++ 2m  karras") == ("dpm++_2m", "Karras")  # any case and spacing
    with pytest.raises(ArgumentError, match="unknown sampler 'Euler z'"):
        lookup("Euler z")


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_a1111_names_map_onto_diffusers_schedulers_with_their_flags(name):
    pytest.importorskip("diffusers")
    if name.startswith("DPM++ SDE"):
        pytest.importorskip("torchsde")
    cls, flags = MAPPINGS[name]
    s = build(name)
    assert type(s).__name__ == cls
    for key, value in flags.items():
        assert s.config[key] == value, (name, key)
    # and the metadata names it back the way A1111 writes it (schedule type apart, since A1111 1.9)
    back = a1111_of(cls, s.config)
    base, _, _ = name.partition(" Karras")
    base = base.removesuffix(" Exponential")
    assert back["sampler"] == base
    if name.endswith("Karras"):
        assert back["schedule_type"] == "Karras"


def test_schedule_type_and_timestep_spacing_reach_the_scheduler():
    pytest.importorskip("diffusers")
    s = build("Euler", schedule_type="Exponential", timestep_spacing="trailing")
    assert s.config.use_exponential_sigmas is True and s.config.timestep_spacing == "trailing"
    assert build("euler", schedule_type="karras").config.use_karras_sigmas is True
    assert build("DPM++ 2M", schedule_type="SGM Uniform").config.timestep_spacing == "trailing"
    assert build("DDIM", timestep_spacing="linspace").config.timestep_spacing == "linspace"
    # no sampler: the model's own class, with the flags
    s = build(None, timestep_spacing="trailing")
    assert type(s).__name__ == "PNDMScheduler" and s.config.timestep_spacing == "trailing"
    with pytest.raises(ArgumentError, match="schedule type 'Karras' is not available with DDIM"):
        choose("ddim", "Karras")
    with pytest.raises(ArgumentError, match=r"not available with the model's own scheduler \(PNDMScheduler\)") as e:
        choose(None, "Karras", own_class="PNDMScheduler")
    assert '{"scheduler" "DPM++ 2M" "schedule_type" "Karras"}' in e.value.hint  # what to do
    with pytest.raises(ArgumentError, match="unknown schedule type"):
        choose("euler", "Quadratic")


def test_dpm_sde_is_seeded_by_the_call_and_needs_torchsde(monkeypatch):
    pytest.importorskip("diffusers")
    pytest.importorskip("torchsde")
    assert build("DPM++ SDE", seed=7).config.noise_sampler_seed == 7
    import importlib.util

    from viwoscript.errors import CapabilityError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torchsde" else real(n, *a))
    with pytest.raises(CapabilityError, match="needs the torchsde package") as e:
        build("DPM++ SDE")
    assert "pip install torchsde" in e.value.hint


def test_names_for_metadata_without_a_scheduler_object():
    assert a1111_names("dpm++_2m_karras") == {"sampler": "DPM++ 2M", "schedule_type": "Karras"}
    assert a1111_names("DPM++ 2M SDE", schedule_type="exponential") == {"sampler": "DPM++ 2M SDE",
                                                                       "schedule_type": "Exponential"}
    assert a1111_names("nope") == {}
    assert set(A1111_SAMPLERS.values()) <= {(k, s) for k in SAMPLER_SPECS for s in (None, "Karras", "Exponential")}


def test_a_call_s_sampler_options_reach_the_pipeline_and_its_metadata(tmp_path):
    pytest.importorskip("diffusers")
    pytest.importorskip("torchsde")
    import numpy as np

    from viwoscript import Runtime
    from viwoscript.capabilities import capabilities
    from viwoscript.io.metadata import a1111_parameters
    from viwoscript.models import ModelConfig
    from viwoscript.models.tiny import make_tiny

    make_tiny(tmp_path / "sd15", "sd15")
    rt = Runtime(capabilities=capabilities(ModelConfig(aliases={"tiny": str(tmp_path / "sd15")})), grants="default")
    gen = '(std.call_method (get_capability "diffusers.generate") "textToImage" "a boat" (std.arg 0))'
    small = {"steps": 2, "seed": 5, "width": 64, "height": 64}
    r = rt.run(gen, args=[{**small, "scheduler": "DPM++ 2M SDE", "schedule_type": "Karras",
                           "timestep_spacing": "trailing"}])
    meta = r["image"].metadata
    assert (meta["scheduler"], meta["sampler"], meta["schedule_type"], meta["timestep_spacing"]) == (
        "DPM++ 2M SDE", "DPM++ 2M SDE", "Karras", "trailing")
    assert "Sampler: DPM++ 2M SDE, Schedule type: Karras," in a1111_parameters(meta)
    # DPM++ SDE draws Brownian noise: seeded by the call, so the same seed gives the same image
    a, b = (rt.run(gen, args=[{**small, "scheduler": "DPM++ SDE"}])["image"].pixels for _ in range(2))
    assert np.array_equal(a, b)


def test_an_unknown_sampler_name_suggests_the_nearest_ones():
    from viwoscript import Runtime
    from viwoscript.capabilities.fake import FakeGenerate

    gen = '(std.call_method (get_capability "diffusers.generate") "textToImage" "x" {"scheduler" (std.arg 0)})'
    for wrong, message in (("dpm++ 2m karras", 'got "dpm++ 2m karras"; did you mean "DPM++ 2M Karras"?'),
                           ("DPM++ 2Mx", 'did you mean "DPM++ 2M"')):
        with pytest.raises(ArgumentError) as info:
            Runtime(capabilities=[FakeGenerate], grants="default").run(gen, args=[wrong])
        assert message in info.value.message and "scheduler must be one of" in info.value.message
        assert '"euler_a"' in info.value.hint  # the full list stays in the hint
