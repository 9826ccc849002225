"""One declaration per capability type: the fake and the real implementation implement it (issue 14)."""

from __future__ import annotations

import inspect

import pytest

from viwoscript.capabilities import Capability, ParamSpec, method
from viwoscript.capabilities.base import declared
from viwoscript.capabilities.diffusion import DiffusersGenerate
from viwoscript.capabilities.fake import FakeGenerate
from viwoscript.capabilities.generate import GenerateMethods
from viwoscript.capabilities.options import model_options
from viwoscript.capabilities.registry import CapabilityRegistry


def pairs():
    reg = CapabilityRegistry()
    reg.load_entry_points()
    out = [(t, reg.real[t].cls, reg.fakes[t].cls) for t in reg.types() if t in reg.real and t in reg.fakes]
    assert ("diffusers.generate", DiffusersGenerate, FakeGenerate) in out
    return out


@pytest.mark.parametrize("cap_type, real, fake", pairs())
def test_fake_and_real_implement_one_declaration(cap_type, real, fake):
    assert real.methods.keys() == fake.methods.keys()
    for name, spec in real.methods.items():
        other = fake.methods[name]
        # the same declaration: parameters, defaults, ranges, choices, docs, positional count, return type
        assert spec.params == other.params, name
        assert (spec.positional, spec.returns, spec.label, spec.description, spec.options_name) == \
            (other.positional, other.returns, other.label, other.description, other.options_name)
        assert spec.to_metadata() == other.to_metadata()
        # each implements it (neither runs the declaration's body) with the declared parameters, in order;
        # the model options (schedule_type, loras, ...) arrive together as **options
        extra = [p.name for p in model_options()]
        for impl in (spec.fn, other.fn):
            assert not getattr(impl, "declaration_only", False), (name, impl)
            params = list(inspect.signature(impl).parameters.values())[2:]
            if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
                assert [p.name for p in params[:-1]] + extra == [p.name for p in spec.params]
            else:
                assert [p.name for p in params] == [p.name for p in spec.params]
        assert spec.fn is not other.fn


def test_the_generate_declaration_is_where_both_get_their_methods():
    for cls in (DiffusersGenerate, FakeGenerate):
        assert issubclass(cls, GenerateMethods)
        for name, spec in cls.methods.items():
            assert spec.params is GenerateMethods.methods[name].params
    # neither implementation declares a method of its own
    for cls in (DiffusersGenerate, FakeGenerate):
        assert not [a for a in vars(cls).values() if hasattr(a, "method_spec")], cls


def test_an_override_implements_the_inherited_declaration_and_must_accept_its_parameters():
    class Decl(Capability):
        type = "demo.decl"

        @method("say", ParamSpec("text", "string"), returns="string")
        @declared
        def say(self, ctx, text):
            """Say it."""
            raise NotImplementedError

    class Impl(Decl):
        def say(self, ctx, text):
            return text.upper()

    assert Impl.methods["say"].fn is Impl.say and Impl.methods["say"].description == "Say it."
    assert Impl.methods["say"].params == Decl.methods["say"].params
    with pytest.raises(TypeError, match="does not accept declared parameter"):
        class Bad(Decl):
            def say(self, ctx, words):
                return words
