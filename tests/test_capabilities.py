"""The capability framework: declarations, binding, metadata, registration, grants, checks before work."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import viwoscript.plugins
from viwoscript.capabilities import Capability, Limit, MethodSpec, ParamSpec, Workload, image_workload, method
from viwoscript.capabilities.base import MODEL_LIMITS
from viwoscript.capabilities.binding import bind_arguments
from viwoscript.capabilities.fake import FakeGenerate
from viwoscript.capabilities.manager import CapabilityManager
from viwoscript.errors import ArgumentError, CapabilityError, InternalError, ViwoError
from viwoscript.runtime import Runtime
from viwoscript.values import Image

# --- a small capability written the way a plugin author would -------------------------------------


class Greeter(Capability):
    type = "demo.greet"
    label = "Greeter"
    description = "Says hello."
    limits = (Limit("max_times", "number", 3, "Most repetitions"),
              Limit("allowed_names", "array", None, "Names it may greet", kind="subset"))

    @method("greet",
            ParamSpec("name", "string", description="Who", limit="allowed_names"),
            ParamSpec("times", "integer", 1, "How often", min=1, max=100, limit="max_times"),
            ParamSpec("style", "string", "plain", "How", choices=("plain", "loud")),
            ParamSpec("extra", "object", None, "More settings",
                      fields=(ParamSpec("suffix", "string", "!", "End"),
                              ParamSpec("count", "integer", None, "A number", min=0))),
            positional=1, returns="string", label="Greet")
    def greet(self, ctx, name, times, style, extra):
        """Greet someone."""
        text = " ".join([f"hello {name}"] * times) + ((extra or {}).get("suffix") or "")
        return text.upper() if style == "loud" else text

    @method("pair", ParamSpec("a", "any"), ParamSpec("b", "object"), returns="array")
    def pair(self, ctx, a, b):
        """Both arguments back (an object parameter in positional position is not an options object)."""
        return [a, b]


class Unavailable(Capability):
    type = "demo.heavy"
    label = "Heavy"
    requires = ("viwoscript_no_such_module_xyz",)
    extra = "diffusion"

    @method("run", returns="null")
    def run(self, ctx):
        """Never runs here."""


class Recorder(Capability):
    """Records load and calls, to prove that checks happen before any heavy work."""

    type = "demo.render"
    limits = MODEL_LIMITS

    def __init__(self):
        self.calls: list[str] = []

    def load(self, ctx):
        self.calls.append("load")

    @method("render", ParamSpec("width", "integer", 64, min=8, multiple_of=8),
            ParamSpec("height", "integer", 64, min=8, multiple_of=8),
            ParamSpec("steps", "integer", 10, min=1, limit="max_steps"),
            positional=0, returns="number", workload=image_workload())
    def render(self, ctx, width, height, steps):
        """Pretend to render."""
        self.calls.append(f"render {width}x{height}x{steps}")
        return width * height

    @method("broken", returns="any")
    def broken(self, ctx):
        """Returns something that is not a script value."""
        return np.zeros(3)


def rt_with(*caps, grants=None, **kw) -> Runtime:
    return Runtime(capabilities=caps, grants=grants, **kw)


# --- declarations ----------------------------------------------------------------------------------

def test_methods_are_collected_with_docstrings():
    assert list(Greeter.methods) == ["greet", "pair"]
    spec = Greeter.methods["greet"]
    assert isinstance(spec, MethodSpec) and spec.description == "Greet someone."
    assert spec.signature() == "greet(name, {times, style, extra}?) -> string"


def test_declaration_and_function_must_agree():
    with pytest.raises(TypeError, match="does not accept declared parameter"):
        class Bad(Capability):
            type = "demo.bad"

            @method("m", ParamSpec("x", "number"))
            def m(self, ctx, y):
                """Wrong name."""


def test_unknown_param_type_and_limit_kind_are_rejected():
    with pytest.raises(ValueError, match="unknown type"):
        ParamSpec("x", "float")
    with pytest.raises(ValueError, match="unknown kind"):
        Limit("x", kind="bigger")


def test_workload_compute_formula():
    w = Workload(512, 512, 20)
    assert w.compute == 512 * 512 * 20 / 1e6
    assert Workload(512, 512, 20, effective_steps=10, batch=2).compute == 512 * 512 * 10 * 2 / 1e6
    fn = image_workload(image="image", strength="strength", batch="batch")

    class Img:
        width, height = 100, 80

    assert fn({"image": Img(), "steps": 30, "strength": 0.5, "batch": 3}) == Workload(100, 80, 30, 15, 3)


# --- binding ---------------------------------------------------------------------------------------

def bind(args, name="greet"):
    return bind_arguments(f"demo.greet.{name}", Greeter.methods[name], args)


def test_bind_positional_and_options():
    assert bind(["ann"]) == {"name": "ann", "times": 1, "style": "plain", "extra": None}
    assert bind(["ann", {"times": 2, "style": "loud"}])["times"] == 2
    assert bind([{"name": "ann"}])["name"] == "ann"
    assert bind(["ann", None])["times"] == 1


def test_bind_object_param_in_positional_slot():
    assert bind([1, {"k": 2}], "pair") == {"a": 1, "b": {"k": 2}}
    with pytest.raises(ArgumentError, match="takes 2 positional arguments"):
        bind([1, {"k": 2}, 3], "pair")


def test_bind_choices_and_fields():
    with pytest.raises(ArgumentError) as info:
        bind(["ann", {"style": "quiet"}])
    assert info.value.message == 'demo.greet.greet: style must be one of "plain", "loud", got "quiet"'
    assert bind(["ann", {"extra": {"suffix": "?"}}])["extra"] == {"suffix": "?", "count": None}
    assert bind(["ann", {"extra": {"Suffix": "?"}}])["extra"]["suffix"] == "?"
    with pytest.raises(ArgumentError, match="extra has no field \"colour\""):
        bind(["ann", {"extra": {"colour": 1}}])
    with pytest.raises(ArgumentError, match="count must be at least 0"):
        bind(["ann", {"extra": {"count": -1}}])


class Painter(Capability):
    """Signatures of the original's inpaint/outpaint, to check the positional conventions."""

    type = "demo.paint"
    _opts = (ParamSpec("strength", "number", 0.8, min=0, max=1), ParamSpec("steps", "integer", 30, min=1))

    @method("inpaint", ParamSpec("image", "any"), ParamSpec("mask", "any"), ParamSpec("prompt", "string"), *_opts,
            positional=3, options_name="params", returns="object")
    def inpaint(self, ctx, image, mask, prompt, strength, steps):
        """Inpaint."""
        return {"prompt": prompt, "strength": strength, "steps": steps}

    @method("outpaint", ParamSpec("image", "any"),
            ParamSpec("direction", "string", choices=("left", "right", "top", "bottom")),
            ParamSpec("pixels", "integer", min=8, multiple_of=8), ParamSpec("prompt", "string"), *_opts,
            positional=4, options_name="params", returns="object")
    def outpaint(self, ctx, image, direction, pixels, prompt, strength, steps):
        """Outpaint."""
        return {"direction": direction, "pixels": pixels, "steps": steps}


def test_original_inpaint_and_outpaint_conventions():
    spec = Painter.methods["inpaint"]
    b = bind_arguments("demo.paint.inpaint", spec, ["img", "mask", "sky", {"strength": 0.5}])
    assert (b["prompt"], b["strength"], b["steps"]) == ("sky", 0.5, 30)
    assert spec.to_metadata()["parameters"][3]["name"] == "params"
    with pytest.raises(ArgumentError, match="missing required argument prompt"):
        bind_arguments("demo.paint.inpaint", spec, ["img", "mask", {"strength": 0.5}])
    out = Painter.methods["outpaint"]
    b = bind_arguments("demo.paint.outpaint", out, ["img", "left", 100, "sea", {"steps": 5}])
    assert (b["direction"], b["pixels"], b["steps"]) == ("left", 96, 5)
    with pytest.raises(ArgumentError, match='direction must be one of "left", "right", "top", "bottom"'):
        bind_arguments("demo.paint.outpaint", out, ["img", "up", 64, "sea"])


def test_bind_rejects_non_string_and_dunder_option_keys():
    for key in ("__class__", "__proto__", "ctx", "self", "runtime"):
        with pytest.raises(ArgumentError, match="unknown option"):
            bind(["ann", {key: 1}])


# --- calls through a Runtime -----------------------------------------------------------------------

def test_plugin_capability_end_to_end():
    rt = rt_with(Greeter, grants=[{"type": "demo.greet", "params": {"max_times": 2}}])
    assert rt.run('(std.call_method (get_capability "demo.greet") "greet" "ann" {"times" 2 "style" "loud"})') \
        == "HELLO ANN HELLO ANN"
    with pytest.raises(CapabilityError, match="times 3 exceeds this grant's max_times of 2"):
        rt.run('(std.call_method (get_capability "demo.greet") "greet" "ann" {"times" 3})')


def test_default_above_a_grant_limit_is_lowered_to_it():
    rec = Recorder()
    rt = rt_with(rec, grants=[{"type": "demo.render", "params": {"max_steps": 4}}])
    rt.run('(std.call_method (get_capability "demo.render") "render")')
    assert rec.calls == ["load", "render 64x64x4"]


def test_checks_run_before_load():
    rec = Recorder()
    rt = rt_with(rec, grants=[{"type": "demo.render", "params": {"max_compute": 0.01}}])
    with pytest.raises(CapabilityError) as info:
        rt.run('(std.call_method (get_capability "demo.render") "render" {"width" 64 "height" 64 "steps" 5})')
    assert info.value.message == ("demo.render.render: compute cost 0.02048 (64×64 × 5 steps / 1e6) exceeds "
                                  "this grant's max_compute of 0.01")
    assert "max_compute" in info.value.hint
    assert rec.calls == []
    assert info.value.span is not None and info.value.span.line == 1


def test_load_happens_once():
    rec = Recorder()
    rt = rt_with(rec, grants=[{"type": "demo.render"}])
    for _ in range(3):
        rt.run('(std.call_method (get_capability "demo.render") "render")')
    assert rec.calls.count("load") == 1
    rt.caps.close()


def test_a_method_returning_a_non_script_value_is_an_internal_error():
    rt = rt_with(Recorder(), grants=[{"type": "demo.render"}])
    with pytest.raises(InternalError, match="returned a ndarray"):
        rt.run('(std.call_method (get_capability "demo.render") "broken")')


def test_unavailable_capability_explains_how_to_install():
    rt = rt_with(Unavailable, grants=[{"type": "demo.heavy"}])
    row = next(r for r in rt.caps.status() if r["type"] == "demo.heavy")
    assert row["available"] is False
    assert row["reason"] == "needs viwoscript_no_such_module_xyz: pip install 'viwoscript[diffusion]'"
    with pytest.raises(CapabilityError) as info:
        rt.run('(std.call_method (get_capability "demo.heavy") "run")')
    assert "not available here" in info.value.message and "viwoscript[diffusion]" in info.value.message


def test_default_grants_skip_unavailable_capabilities():
    rt = rt_with(Unavailable, Greeter, grants="default")
    assert rt.run('(has_capability "demo.heavy")') is False
    assert rt.run('(has_capability "demo.greet")') is True


# --- grants ----------------------------------------------------------------------------------------

def test_grant_params_get_documented_defaults():
    rt = Runtime(grants=[{"type": "diffusers.generate", "params": {"max_steps": 10}}])
    h = rt.caps.held_by()[0]
    assert h.params == {"allowed_models": None, "allowed_loras": None, "max_width": 2048, "max_height": 2048, "max_pixels": 4194304,
                        "max_steps": 10, "max_compute": 250, "max_batch": 8}


@pytest.mark.parametrize("grants, message", [
    ([{"type": "no.such"}], "cannot grant unknown capability type 'no.such'"),
    ([{"type": "diffusers.generate", "params": {"max_stepz": 1}}], "diffusers.generate has no parameter 'max_stepz'"),
    ([{"type": "diffusers.generate", "params": {"max_steps": "ten"}}], "parameter 'max_steps' has an invalid value"),
    ([{"type": "diffusers.generate", "params": {"max_steps": -1}}], "parameter 'max_steps' has an invalid value"),
    ([{"type": "diffusers.generate", "params": {"allowed_models": "sd15"}}], "'allowed_models' has an invalid"),
    ([{"type": "diffusers.generate", "provider": "nope"}], "has no implementation 'nope'"),
    ([{"type": "diffusers.generate", "parms": {}}], "unknown key(s) parms"),
    ([{"type": "sys.mint"}], "sys.mint needs the parameter 'namespace'"),
    ([{"params": {}}], "expected {\"type\": ..."),
    ("everything", "grants must be None"),
])
def test_bad_grants_are_clear_errors(grants, message):
    rt = Runtime(grants=grants)
    with pytest.raises(CapabilityError) as info:
        rt.caps  # noqa: B018 - created on first use
    assert message in info.value.message


def test_grant_shorthand_string_and_host_api():
    rt = Runtime(grants=["diffusers.generate"])
    assert rt.run('(has_capability "diffusers.generate")') is True
    h = rt.caps.grant("diffusers.generate", {"max_steps": 3})
    assert rt.run("(std.arg 0)", args=[h]) is h
    assert rt.caps.handle_by_id(h.id) is h
    rt.caps.revoke(h)
    assert rt.caps.handle_by_id(h.id) is None
    with pytest.raises(CapabilityError, match="was revoked"):
        rt.run('(std.call_method (std.arg 0) "textToImage" "x")', args=[h])


def test_revoke_takes_delegates_along():
    rt = Runtime(grants=["diffusers.generate"])
    parent = rt.caps.held_by()[0]
    child = rt.run('(delegate (std.arg 0) {"max_steps" 3})', args=[parent])
    rt.caps.revoke(parent)
    assert rt.caps.held_by() == []
    with pytest.raises(CapabilityError, match="was revoked"):
        rt.run('(delegate (std.arg 0) {"max_steps" 2})', args=[child])


# --- registration ----------------------------------------------------------------------------------

def test_entry_points_register_the_builtins():
    names = {ep.name: ep.value for ep in viwoscript.plugins.iter_entry_points("viwoscript.capabilities")}
    assert names["fake"] == "viwoscript.capabilities.fake:FakeGenerate"
    assert names["mint"] == "viwoscript.capabilities.mint:SysMint"
    rt = Runtime()
    origins = {e.origin.split()[0] for e in rt.caps.registry.entries()}
    assert origins == {"entry"}


def fake_entry_points(monkeypatch, *eps):
    real = viwoscript.plugins.iter_entry_points

    def patched(group):
        if group == "viwoscript.capabilities":
            return list(real(group)) + [EntryPoint(n, v, group) for n, v in eps]
        return real(group)

    monkeypatch.setattr(viwoscript.plugins, "iter_entry_points", patched)


def test_broken_plugin_is_reported_once_and_skipped(monkeypatch):
    fake_entry_points(monkeypatch, ("broken", "viwoscript_no_such_plugin_module:Cap"),
                      ("notcap", "viwoscript.values:Image"))
    rt = Runtime(grants="default")
    errors = rt.caps.errors
    assert len(errors) == 2
    assert "capability plugin 'broken' (viwoscript_no_such_plugin_module:Cap) failed to load: " \
           "ModuleNotFoundError" in errors[0]
    assert "'notcap'" in errors[1] and "is not a Capability" in errors[1]
    assert errors == [e for e in rt.plugin_errors if "capability plugin" in e]
    rows = [r for r in rt.caps.status() if r["type"] is None]
    assert len(rows) == 2 and all(not r["available"] for r in rows)
    assert rt.run('(has_capability "diffusers.generate")') is True  # the rest still works


class OtherMint(Capability):
    type = "sys.mint"

    @method("mint", returns="null")
    def mint(self, ctx):
        """An impostor."""


def test_duplicate_types_are_an_error_never_an_override(monkeypatch):
    module = types.ModuleType("viwo_test_impostor_plugin")
    module.OtherMint = OtherMint
    monkeypatch.setitem(sys.modules, module.__name__, module)
    fake_entry_points(monkeypatch, ("impostor", "viwo_test_impostor_plugin:OtherMint"))
    rt = Runtime()
    assert any("cannot replace it" in e and "sys.mint" in e for e in rt.caps.errors)
    assert rt.caps.registry.real["sys.mint"].cls.__name__ == "SysMint"


class AnotherMint(Capability):
    type = "sys.mint"

    @method("mint", returns="null")
    def mint(self, ctx):
        """A second host impostor."""


def test_host_class_replaces_a_discovered_one_but_two_host_classes_conflict():
    rt = Runtime(capabilities=[OtherMint])
    entry = rt.caps.registry.real["sys.mint"]
    assert entry.cls is OtherMint and entry.origin == "Runtime(capabilities=...)" and rt.caps.errors == []
    with pytest.raises(CapabilityError, match="already registered by .*OtherMint .*AnotherMint .*cannot replace"):
        Runtime(capabilities=[OtherMint, AnotherMint]).caps  # noqa: B018


def test_host_may_register_a_configured_instance_of_the_same_class():
    fake = FakeGenerate()
    rt = Runtime(capabilities=[fake], grants=["diffusers.generate"])
    rt.run('(std.call_method (get_capability "diffusers.generate") "textToImage" "x" {"width" 64 "height" 64 '
           '"steps" 1})')
    assert rt.caps.registry.fakes["diffusers.generate"].instance is fake


class RealGenerate(FakeGenerate):
    provider = "real-test"
    fake = False
    label = "Generate images (test double)"


class UnavailableReal(RealGenerate):
    provider = "missing"
    requires = ("viwoscript_no_such_module_xyz",)
    extra = "diffusion"


def metadata_of(rt: Runtime, cap_type: str) -> dict:
    return {c["type"]: c for c in rt.capability_metadata()}[cap_type]


@pytest.mark.parametrize("plugins", [False, True])
def test_real_implementation_is_preferred_when_available(plugins):
    # with plugins the host's class replaces the entry-point diffusers.generate; without, it is the only real one
    rt = Runtime(capabilities=[RealGenerate], grants="default", plugins=plugins)
    assert rt.caps.registry.select("diffusers.generate").cls is RealGenerate
    assert metadata_of(rt, "diffusers.generate")["label"] == "Generate images (test double)"
    rows = {r["provider"]: r for r in rt.caps.status() if r["type"] == "diffusers.generate"}
    assert rows["real-test"]["selected"] and not rows["fake"]["selected"] and list(rows) == ["fake", "real-test"]
    assert rows["real-test"]["granted"] and not rows["fake"]["granted"]


@pytest.mark.parametrize("plugins", [False, True])
def test_fake_stands_in_and_says_so_when_the_real_one_is_unavailable(plugins):
    events = []
    rt = Runtime(capabilities=[UnavailableReal], grants="default", on_event=events.append, plugins=plugins)
    assert rt.caps.registry.select("diffusers.generate").cls is FakeGenerate
    meta = metadata_of(rt, "diffusers.generate")
    assert "FAKE" in meta["label"] and meta["description"].startswith("Fake")
    rows = {r["provider"]: r for r in rt.caps.status() if r["type"] == "diffusers.generate"}
    assert list(rows) == ["missing", "fake"]  # the one in use last
    assert rows["missing"]["reason"] == "needs viwoscript_no_such_module_xyz: pip install 'viwoscript[diffusion]'"
    assert rows["fake"]["selected"] and rows["fake"]["fake"] and rows["fake"]["granted"]
    for _ in range(2):
        rt.run('(std.call_method (get_capability "diffusers.generate") "textToImage" "x" {"width" 64 "height" 64 '
               '"steps" 1})')
    warns = [e["message"] for e in events if e["type"] == "warn"]
    assert len(warns) == 1 and "fake implementation" in warns[0] and "viwoscript[diffusion]" in warns[0]


@pytest.mark.parametrize("real", [RealGenerate, UnavailableReal])
def test_a_grant_may_pin_the_fake(real):
    events = []
    rt = Runtime(capabilities=[real], grants=[{"type": "diffusers.generate", "provider": "fake"}],
                 on_event=events.append)
    r = rt.run('(std.call_method (get_capability "diffusers.generate") "textToImage" "x" {"width" 64 '
               '"height" 64 "steps" 1})')
    assert r["image"].metadata["fake"] is True
    assert [e for e in events if e["type"] == "warn"] == []  # chosen, not standing in: no warning


# --- metadata (design §8) --------------------------------------------------------------------------

PARAM_KEYS = {"name": str, "type": str, "description": str, "optional": bool, "default": object,
              "fields": list, "choices": list, "min": (int, float), "max": (int, float)}


def check_param(p: dict) -> None:
    assert {"name", "type"} <= set(p) <= set(PARAM_KEYS), p
    for k, t in PARAM_KEYS.items():
        if k in p:
            assert isinstance(p[k], t), (k, p)
    assert p["type"] in ("any", "string", "number", "boolean", "image", "array", "object", "capability")
    for f in p.get("fields", ()):
        check_param(f)


def check_metadata(meta: list) -> None:
    import json

    json.dumps(meta)  # JSON-safe
    assert isinstance(meta, list)
    for cap in meta:
        assert set(cap) == {"type", "label", "description", "methods"}
        assert all(isinstance(cap[k], str) for k in ("type", "label", "description")) and cap["label"]
        for m in cap["methods"]:
            assert set(m) == {"name", "label", "description", "parameters", "returnType"}
            assert isinstance(m["returnType"], str) and isinstance(m["parameters"], list)
            for p in m["parameters"]:
                check_param(p)


def test_metadata_of_every_capability_has_the_design_shape():
    rt = Runtime(capabilities=[Greeter, Unavailable, Recorder])
    meta = rt.capability_metadata()
    check_metadata(meta)  # every registered one: the host's, the built-ins and the entry points' real ones
    types_ = [c["type"] for c in meta]
    assert types_ == sorted(set(types_))
    assert {"demo.greet", "demo.heavy", "demo.render", "diffusers.generate", "sys.mint"} <= set(types_)
    by_type = {c["type"]: c for c in meta}
    assert by_type["demo.render"]["description"] == \
        "Records load and calls, to prove that checks happen before any heavy work."
    bare = Runtime(capabilities=[Greeter, Unavailable, Recorder], plugins=False).capability_metadata()
    assert [c["type"] for c in bare] == ["demo.greet", "demo.heavy", "demo.render", "diffusers.generate",
                                         "entity.control", "sys.mint"]
    greet = by_type["demo.greet"]["methods"][0]
    assert greet["parameters"][0] == {"name": "name", "type": "string", "description": "Who"}
    options = greet["parameters"][1]
    assert options["name"] == "options" and options["optional"] is True
    fields = {f["name"]: f for f in options["fields"]}
    assert fields["times"] == {"name": "times", "type": "number", "description": "How often", "optional": True,
                               "default": 1, "min": 1, "max": 100}
    assert fields["style"]["choices"] == ["plain", "loud"]
    assert [f["name"] for f in fields["extra"]["fields"]] == ["suffix", "count"]


def test_fake_metadata_mirrors_the_original_text_to_image():
    meta = {c["type"]: c for c in Runtime().capability_metadata()}["diffusers.generate"]
    t2i = {m["name"]: m for m in meta["methods"]}["textToImage"]
    assert [p["name"] for p in t2i["parameters"]] == ["prompt", "options"]
    fields = {f["name"] for f in t2i["parameters"][1]["fields"]}
    assert {"width", "height", "steps", "guidance_scale", "negative_prompt", "seed", "model"} <= fields


# --- import cost -----------------------------------------------------------------------------------

def test_framework_imports_with_core_only_and_stays_light():
    code = ("import sys, viwoscript.capabilities, viwoscript.capabilities.manager, viwoscript.capabilities.fake; "
            "heavy = [m for m in ('numpy', 'torch', 'diffusers', 'pyvips', 'PIL') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_capability_manager_is_per_runtime():
    a, b = Runtime(grants=["diffusers.generate"]), Runtime()
    assert isinstance(a.caps, CapabilityManager) and a.caps is not b.caps
    assert b.caps.held_by() == []
    h = a.caps.held_by()[0]
    with pytest.raises(ViwoError, match="belongs to another runtime"):
        b.run('(std.call_method (std.arg 0) "textToImage" "x")', args=[h])


# --- docs and examples -----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_the_plugin_example_in_the_docs_works():
    text = (ROOT / "docs" / "capabilities.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(# my_plugin/sepia.py\n.*?)```", text, re.S).group(1)
    namespace: dict = {"__name__": "my_plugin.sepia"}
    exec(compile(code, "docs/capabilities.md", "exec"), namespace)  # noqa: S102 - our own documentation
    sepia = namespace["Sepia"]
    events: list = []
    rt = Runtime(capabilities=[sepia(strength_curve=0.9)], grants=[{"type": "demo.sepia"}], on_event=events.append)
    img = Image(np.full((16, 24, 3), 200, np.uint8))
    r = rt.run('(std.call_method (get_capability "demo.sepia") "tone" (std.arg 0) {"amount" 0.8 "steps" 2})',
               args=[img])
    out = np.asarray(r["image"])
    assert out.shape == (16, 24, 3) and out[0, 0, 0] > out[0, 0, 2]  # brown: more red than blue
    assert r["image"].metadata["sepia"] == 0.8
    assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2]
    check_metadata(rt.capability_metadata())


def test_compute_error_text_in_the_docs_is_real():
    rt = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake", "params": {"max_compute": 40}}])
    with pytest.raises(CapabilityError) as info:
        rt.run('(std.call_method (get_capability "diffusers.generate") "textToImage" "x" {"width" 1024 '
               '"height" 1024 "steps" 50})')
    text = (ROOT / "docs" / "capabilities.md").read_text(encoding="utf-8")
    assert info.value.message in text


def test_generate_fake_example_produces_the_documented_image():
    from viwoscript.capabilities.fake import render

    events: list = []
    rt = Runtime(grants="default", on_event=events.append)
    src = (ROOT / "examples" / "generate_fake.viwo").read_text(encoding="utf-8")
    img = rt.run(src, filename="examples/generate_fake.viwo")
    assert isinstance(img, Image) and (img.width, img.height) == (512, 384)
    assert img.metadata["fake"] is True and img.metadata["seed"] == 7
    assert np.array_equal(np.asarray(img), render("a red comet over a quiet lake, evening", 7, 512, 384))
    assert any(e["type"] == "log" and "with seed 7" in e["message"] for e in events)
    assert Runtime().check(src) == []
