"""Kernel opcodes with granted capabilities: get/has, std.call_method, mint, delegate, give, metadata."""

from __future__ import annotations

import numpy as np
import pytest

from viwoscript.capabilities.fake import FakeGenerate, render
from viwoscript.errors import ArgumentError, CapabilityError, InterruptedError_, ViwoError
from viwoscript.runtime import Runtime
from viwoscript.values import HostValue, Image

FAKE = {"type": "diffusers.generate", "provider": "fake"}


def runtime(*grants, **kw) -> tuple[Runtime, list[dict]]:
    events: list[dict] = []
    rt = Runtime(grants=list(grants) if grants else [FAKE], on_event=events.append, **kw)
    return rt, events


def gen_call(args: str, method: str = "textToImage") -> str:
    return f'(std.call_method (get_capability "diffusers.generate") "{method}" {args})'


# --- get_capability / has_capability ---------------------------------------------------------------

def test_get_capability_returns_the_same_handle():
    rt, _ = runtime()
    assert rt.run('(== (get_capability "diffusers.generate") (get_capability "diffusers.generate"))') is True
    h = rt.run('(get_capability "diffusers.generate")')
    assert h.type_name == "capability" and h.type == "diffusers.generate"
    assert rt.run('(std.typeof (get_capability "diffusers.generate"))') == "object"


def test_nothing_is_granted_by_default_when_embedding():
    rt = Runtime()
    assert rt.run('(get_capability "diffusers.generate")') is None
    assert rt.caps.held_by() == []


def test_default_grants_every_available_capability_except_mint():
    rt = Runtime(grants="default")
    assert rt.run('(has_capability "diffusers.generate")') is True
    assert rt.run('(has_capability "sys.mint")') is False


def test_filter_matches_when_the_grant_covers_it():
    rt, _ = runtime({**FAKE, "params": {"max_steps": 50, "allowed_models": ["a", "b"]}})
    assert rt.run('(has_capability "diffusers.generate" {"max_steps" 50})') is True
    assert rt.run('(has_capability "diffusers.generate" {"max_steps" 20})') is True
    assert rt.run('(has_capability "diffusers.generate" {"max_steps" 51})') is False
    assert rt.run('(has_capability "diffusers.generate" {"allowed_models" ["a"]})') is True
    assert rt.run('(has_capability "diffusers.generate" {"allowed_models" ["c"]})') is False
    assert rt.run('(has_capability "diffusers.generate" {"no_such_param" 1})') is False
    assert rt.run('(get_capability "diffusers.generate" {"max_steps" 51})') is None


def test_filter_picks_among_several_grants():
    rt, _ = runtime({**FAKE, "params": {"max_steps": 10}}, {**FAKE, "params": {"max_steps": 100}})
    h = rt.run('(get_capability "diffusers.generate" {"max_steps" 50})')
    assert h.params["max_steps"] == 100
    assert rt.run('(get_capability "diffusers.generate")').params["max_steps"] == 10


# --- std.call_method on the fake --------------------------------------------------------------------

def test_text_to_image_result_shape_and_metadata():
    rt, events = runtime()
    r = rt.run(gen_call('"a red comet" {"width" 256 "height" 192 "steps" 4 "seed" 7}'))
    assert set(r) == {"image", "width", "height", "format", "seed", "model_id", "steps"}  # the real one's shape
    assert (r["width"], r["height"], r["format"], r["seed"]) == (256, 192, "png", 7)
    img = r["image"]
    assert isinstance(img, Image) and (img.width, img.height, img.mode) == (256, 192, "RGB")
    assert img.metadata["fake"] is True and img.metadata["seed"] == 7 and img.metadata["prompt"] == "a red comet"
    assert np.array_equal(np.asarray(img), render("a red comet", 7, 256, 192))
    progress = [e for e in events if e["type"] == "progress"]
    assert progress == [{"type": "progress", "task": "textToImage", "step": i, "total": 4} for i in range(1, 5)]


def test_fake_is_deterministic_and_depends_on_prompt_seed_and_size():
    a = render("cat", 1, 64, 64)
    assert np.array_equal(a, render("cat", 1, 64, 64))
    assert not np.array_equal(a, render("dog", 1, 64, 64))
    assert not np.array_equal(a, render("cat", 2, 64, 64))
    assert render("cat", 1, 64, 72).shape == (72, 64, 3)
    assert a.std() > 5  # a picture, not a flat colour


def test_options_accept_camel_case_snake_case_and_original_names():
    rt, events = runtime(capabilities=[FakeGenerate(models={"fake": 512, "m": 512})])
    r = rt.run(gen_call('"x" {"width" 64 "height" 64 "numInferenceSteps" 2 "guidanceScale" 3 '
                        '"negativePrompt" "blur" "modelId" "m" "seed" 1}'))
    meta = r["image"].metadata
    assert (meta["steps"], meta["guidance_scale"], meta["negative_prompt"], meta["model"]) == (2, 3, "blur", "m")
    r2 = rt.run(gen_call('"x" {"width" 64 "height" 64 "num_inference_steps" 2 "guidance_scale" 3 '
                         '"negative_prompt" "blur" "model_id" "m" "seed" 1}'))
    assert np.array_equal(np.asarray(r["image"]), np.asarray(r2["image"]))


def test_missing_seed_is_chosen_and_reported():
    rt, _ = runtime()
    r = rt.run(gen_call('"x" {"width" 64 "height" 64 "steps" 1}'))
    assert isinstance(r["seed"], int) and 0 <= r["seed"] < 2**32
    assert r["image"].metadata["seed"] == r["seed"]
    assert np.array_equal(np.asarray(r["image"]), render("x", r["seed"], 64, 64))


def test_sizes_round_down_to_multiples_of_8_with_a_warning():
    rt, events = runtime()
    r = rt.run(gen_call('"x" {"width" 100 "height" 71 "steps" 1 "seed" 0}'))
    assert (r["width"], r["height"]) == (96, 64) and r["image"].width == 96
    warns = [e["message"] for e in events if e["type"] == "warn"]
    assert any("width 100 rounded down to 96" in w for w in warns)
    assert any("height 71 rounded down to 64" in w for w in warns)


def test_null_options_and_null_values_mean_defaults():
    rt, _ = runtime()
    r = rt.run(gen_call('"x" null'))
    assert (r["width"], r["height"]) == (512, 512)
    r = rt.run(gen_call('"x" {"width" null "height" 64 "steps" 1}'))
    assert (r["width"], r["height"]) == (512, 64)


def test_batch_returns_images_and_consecutive_seeds():
    rt, events = runtime()
    r = rt.run(gen_call('"x" {"width" 64 "height" 64 "steps" 2 "seed" 10 "batch" 3}'))
    assert r["seeds"] == [10, 11, 12] and len(r["images"]) == 3 and r["image"] is r["images"][0]
    assert np.array_equal(np.asarray(r["images"][2]), render("x", 12, 64, 64))
    assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2, 3, 4, 5, 6]


def test_image_to_image_runs_strength_times_steps():
    rt, events = runtime()
    src = Image(np.full((70, 90, 4), 200, np.uint8))
    r = rt.run('(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 0) "a boat" '
               '{"strength" 0.5 "steps" 10 "seed" 3})', args=[src])
    assert (r["width"], r["height"]) == (88, 64)
    assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2, 3, 4, 5]
    expected = (np.full((64, 88, 3), 200.0) * 0.5 + render("a boat", 3, 88, 64) * 0.5 + 0.5).astype(np.uint8)
    assert np.array_equal(np.asarray(r["image"]), expected)
    assert r["image"].metadata["strength"] == 0.5
    full = rt.run('(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 0) "a boat" '
                  '{"strength" 1 "steps" 2 "seed" 3})', args=[src])
    assert np.array_equal(np.asarray(full["image"]), render("a boat", 3, 88, 64))
    with pytest.raises(ArgumentError, match="strength × steps must be at least 1"):
        rt.run('(std.call_method (get_capability "diffusers.generate") "imageToImage" (std.arg 0) "b" '
               '{"strength" 0.05 "steps" 10})', args=[src])


def test_interrupt_between_steps():
    holder: dict = {}

    def on_event(e):
        if e["type"] == "progress" and e["step"] == 3:
            holder["rt"].interrupt()
        holder.setdefault("steps", []).append(e.get("step"))

    rt = Runtime(grants=[FAKE], on_event=on_event)
    holder["rt"] = rt
    with pytest.raises(InterruptedError_):
        rt.run(gen_call('"x" {"width" 64 "height" 64 "steps" 50}'))
    assert holder["steps"] == [1, 2, 3]


@pytest.mark.parametrize("args, message", [
    ('"x" {"stepz" 3}', 'unknown option "stepz"'),
    ('"x" {"steps" "many"}', "steps must be a whole number, got string"),
    ('"x" {"steps" 2.5}', "steps must be a whole number, got 2.5"),
    ('"x" {"steps" 0}', "steps must be between 1 and 1000, got 0"),
    ('"x" {"width" 10}', "width must be between 64 and 8192, got 10"),
    ('"x" {"seed" -1}', "seed must be between 0 and 4294967295, got -1"),
    ('"x" {"guidance_scale" NaN}', "guidance_scale must be a finite number"),
    ('"x" {"steps" 3} "extra"', "takes 1 positional argument (prompt) and an options object, got 3"),
    ('"x" "y"', "takes 1 positional argument (prompt) and an options object, got 2"),
    ('', "missing required argument prompt"),
    ('{"steps" 3}', "missing required argument prompt"),
    ('42', "prompt must be a string, got number 42"),
    ('"x" {"steps" 3 "numInferenceSteps" 4}', "steps given twice"),
    ('"x" {"prompt" "y"}', "prompt given twice"),
])
def test_argument_errors_say_what_is_allowed(args, message):
    rt, events = runtime()
    with pytest.raises(ArgumentError) as info:
        rt.run(gen_call(args).replace("NaN", "(/ 0 0)"))
    assert message in info.value.message
    assert info.value.message.startswith("diffusers.generate.textToImage: ")
    assert not [e for e in events if e["type"] == "progress"]


def test_unknown_option_hint_lists_the_options():
    rt, _ = runtime()
    with pytest.raises(ArgumentError) as info:
        rt.run(gen_call('"x" {"stepz" 3}'))
    assert "steps" in info.value.hint and "guidance_scale" in info.value.hint


def test_prompt_may_come_from_the_options_object():
    rt, _ = runtime()
    r = rt.run(gen_call('{"prompt" "x" "width" 64 "height" 64 "steps" 1 "seed" 5}'))
    assert np.array_equal(np.asarray(r["image"]), render("x", 5, 64, 64))


def test_undeclared_method_lists_callable_ones():
    rt, _ = runtime()
    with pytest.raises(ArgumentError) as info:
        rt.run(gen_call("1", method="upscale"))
    assert info.value.message == 'std.call_method: diffusers.generate has no method "upscale"'
    assert info.value.hint == "callable: textToImage, imageToImage"


# --- limits through std.call_method ----------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ('{"width" 1024 "height" 64}', "width 1024 exceeds this grant's max_width of 512"),
    ('{"width" 64 "height" 1024}', "height 1024 exceeds this grant's max_height of 512"),
    ('{"width" 512 "height" 512}', "pixel count 262144 exceeds this grant's max_pixels of 200000"),
    ('{"width" 64 "height" 64 "steps" 21}', "steps 21 exceeds this grant's max_steps of 20"),
    ('{"width" 64 "height" 64 "batch" 3}', "batch 3 exceeds this grant's max_batch of 2"),
    ('{"width" 512 "height" 384 "steps" 20}', "compute cost 3.932 (512×384 × 20 steps / 1e6) exceeds this "
                                             "grant's max_compute of 3"),
    ('{"width" 64 "height" 64 "model" "sdxl"}', 'model "sdxl" is not allowed by this grant\'s allowed_models'),
    ('{"width" 256 "height" 256 "steps" 10 "max_compute" 0.5}', "compute cost 0.6554 (256×256 × 10 steps / 1e6) "
                                                                 "exceeds the max_compute you passed of 0.5"),
])
def test_each_grant_limit_is_enforced(options, message):
    params = {"max_width": 512, "max_height": 512, "max_pixels": 200000, "max_steps": 20, "max_compute": 3,
              "max_batch": 2, "allowed_models": ["fake", "sd15"]}
    rt, events = runtime({**FAKE, "params": params})
    with pytest.raises(ViwoError) as info:
        rt.run(gen_call(f'"x" {options}'))
    assert message in info.value.message, info.value.message
    assert not [e for e in events if e["type"] == "progress"]


def test_script_max_compute_never_raises_the_grant():
    rt, _ = runtime({**FAKE, "params": {"max_compute": 1}})
    with pytest.raises(CapabilityError, match="exceeds this grant's max_compute of 1"):
        rt.run(gen_call('"x" {"width" 512 "height" 512 "steps" 10 "max_compute" 1000}'))


def test_allowed_model_passes():
    rt, _ = runtime({**FAKE, "params": {"allowed_models": ["sd15"]}}, capabilities=[FakeGenerate(models={"sd15": 512})])
    r = rt.run(gen_call('"x" {"width" 64 "height" 64 "steps" 1 "model" "sd15"}'))
    assert r["image"].metadata["model"] == "sd15"


# --- delegate / mint / give ------------------------------------------------------------------------

def test_delegate_narrows_and_the_delegate_enforces_it():
    rt, _ = runtime({**FAKE, "params": {"max_steps": 50}})
    rt.run('(std.let small (delegate (get_capability "diffusers.generate") {"max_steps" 5 "max_width" 128}))',
           scope=rt.globals)
    assert rt.run("small", scope=rt.globals).params["max_steps"] == 5
    r = rt.run('(std.call_method small "textToImage" "x" {"width" 128 "height" 64 "steps" 5 "seed" 1})',
               scope=rt.globals)
    assert r["width"] == 128
    with pytest.raises(CapabilityError, match="steps 6 exceeds this grant's max_steps of 5"):
        rt.run('(std.call_method small "textToImage" "x" {"width" 64 "height" 64 "steps" 6})', scope=rt.globals)
    # the parent keeps its own limits
    rt.run(gen_call('"x" {"width" 64 "height" 64 "steps" 40}'))


def test_mint_within_namespace_and_through_the_method():
    rt, _ = runtime({"type": "sys.mint", "params": {"namespace": "user.alice"}})
    rt.run('(std.let m (get_capability "sys.mint"))', scope=rt.globals)
    door = rt.run('(mint m "user.alice.door" {"room" 3})', scope=rt.globals)
    assert door.type == "user.alice.door" and door.params == {"room": 3}
    assert rt.run('(has_capability "user.alice.door" {"room" 3})', scope=rt.globals) is True
    same = rt.run('(std.call_method m "mint" "user.alice" {})', scope=rt.globals)
    assert same.type == "user.alice"
    with pytest.raises(CapabilityError, match="does not cover 'user.alicex'"):
        rt.run('(std.call_method m "mint" "user.alicex" {})', scope=rt.globals)
    with pytest.raises(CapabilityError, match="std.call_method: user.alice.door has no methods"):
        rt.run('(std.call_method (get_capability "user.alice.door") "open")', scope=rt.globals)


def test_mint_of_a_registered_type_applies_its_declaration():
    rt, _ = runtime({"type": "sys.mint", "params": {"namespace": "diffusers"}})
    h = rt.run('(mint (get_capability "sys.mint") "diffusers.generate" {"max_steps" 3})')
    assert h.params["max_steps"] == 3 and h.params["max_width"] == 2048
    with pytest.raises(CapabilityError, match="has no parameter 'max_stepz'"):
        rt.run('(mint (get_capability "sys.mint") "diffusers.generate" {"max_stepz" 3})')


def test_give_capability_to_the_caller():
    rt, _ = runtime(caller={"id": 7, "name": "bob"})
    rt.run('(std.let g (get_capability "diffusers.generate"))', scope=rt.globals)
    assert rt.run("(give_capability g (std.caller))", scope=rt.globals) is None
    assert rt.run('(get_capability "diffusers.generate")', scope=rt.globals) is None
    assert [h.type for h in rt.caps.held_by(7)] == ["diffusers.generate"]
    with pytest.raises(CapabilityError, match="no longer held by this script"):
        rt.run('(std.call_method g "textToImage" "x")', scope=rt.globals)


def test_principal_id_is_the_holder():
    rt = Runtime(grants=[FAKE], principal={"id": "alice"})
    assert rt.caps.self_id == "alice"
    assert [h.type for h in rt.caps.held_by("alice")] == ["diffusers.generate"]


def test_metadata_opcode_matches_the_runtime():
    rt, _ = runtime()
    assert rt.run("(get_capability_metadata)") == rt.capability_metadata()


def test_json_stringify_of_a_handle_is_data_only():
    rt, _ = runtime({**FAKE, "params": {"max_steps": 9}})
    text = rt.run('(json.stringify (get_capability "diffusers.generate"))')
    assert '"__brand":"Capability"' in text and '"max_steps":9' in text


# --- std.call_method on other values ----------------------------------------------------------------

def test_image_allowlist():
    rt = Runtime()
    img = Image(np.zeros((3, 5, 4), np.uint8), {"seed": 4, "nested": {"a": [1]}})
    assert rt.run('(std.call_method (std.arg 0) "width")', args=[img]) == 5
    assert rt.run('(std.call_method (std.arg 0) "height")', args=[img]) == 3
    assert rt.run('(std.call_method (std.arg 0) "size")', args=[img]) == [5, 3]
    assert rt.run('(std.call_method (std.arg 0) "mode")', args=[img]) == "RGBA"
    meta = rt.run('(std.seq (std.let m (std.call_method (std.arg 0) "metadata")) '
                  '(obj.set (obj.get m "nested") "a" 0) m)', args=[img])
    assert meta == {"seed": 4, "nested": {"a": 0}}
    assert img.metadata == {"seed": 4, "nested": {"a": [1]}}  # a copy: the image is unchanged
    for bad in ("pixels", "to_pil", "with_metadata", "__class__", "to_png_bytes"):
        with pytest.raises(ArgumentError, match=f'image has no callable method "{bad}"'):
            rt.run(f'(std.call_method (std.arg 0) "{bad}")', args=[img])


class Entity(HostValue):
    type_name = "entity"
    script_methods = frozenset({"name", "greet", "_secret"})

    def __init__(self):
        self.id = 5
        self.name = "bob"

    def greet(self, who):
        return f"hi {who}"

    def _secret(self):  # listed, but private names are never callable
        return "leak"

    def delete(self):
        raise AssertionError("must not be reachable")


def test_host_value_allowlist():
    rt = Runtime()
    e = Entity()
    assert rt.run('(std.call_method (std.arg 0) "name")', args=[e]) == "bob"
    assert rt.run('(std.call_method (std.arg 0) "greet" "ann")', args=[e]) == "hi ann"
    for bad in ("delete", "_secret", "__class__", "id"):
        with pytest.raises(ArgumentError) as info:
            rt.run(f'(std.call_method (std.arg 0) "{bad}")', args=[e])
        assert info.value.hint == "callable on entity: greet, name"
