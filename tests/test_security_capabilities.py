"""Capabilities are safe for untrusted scripts.

1. Property tests: no sequence of mint/delegate/give yields parameters wider than the parent's, checked
   against an independent oracle written from the rules in ``docs/capabilities.md``.
2. Attack scripts: each fails with a ViwoError and changes nothing (records, holders, events).
"""

from __future__ import annotations

import math
import posixpath
import re
from pathlib import PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viwoscript.capabilities.fake import FakeGenerate
from viwoscript.capabilities.grants import WILDCARD, namespace_covers, narrows, restrict
from viwoscript.errors import ViwoError
from viwoscript.runtime import Runtime

DECLARED = FakeGenerate.limit_specs()

# --- the oracle: the documented rules, written independently of grants.py -------------------------


def o_eq(a, b) -> bool:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, num) and isinstance(b, num):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(o_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(o_eq(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def o_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def o_path(parent, child) -> bool:
    if not isinstance(parent, str) or not isinstance(child, str):
        return False
    if any(".." in re.split(r"[\\/]", x) for x in (parent, child)):
        return False
    p = PurePosixPath(posixpath.normpath(parent.replace("\\", "/")))
    c = PurePosixPath(posixpath.normpath(child.replace("\\", "/")))
    return c == p or p in c.parents


def o_domain(parent, child) -> bool:
    if not isinstance(parent, str) or not isinstance(child, str):
        return False
    p, c = parent.lower().rstrip("."), child.lower().rstrip(".")
    if not p or not c or "" in p.split(".") or "" in c.split("."):
        return parent == child
    return c == p or c.endswith("." + p)


def o_namespace(parent, child) -> bool:
    if not isinstance(parent, str) or not isinstance(child, str):
        return False
    if parent == "*":
        return True
    if child == "*":
        return False
    p, c = parent.split("."), child.split(".")
    return all(p) and c[:len(p)] == p


def o_key(key, parent, child) -> bool:
    if o_eq(parent, child):
        return True
    if key == "*":
        return parent is True and child is False
    declared = DECLARED.get(key)
    if key.startswith("max_"):
        return o_num(child) and (parent is None or (o_num(parent) and child <= parent))
    if key.startswith("min_"):
        return o_num(child) and (parent is None or (o_num(parent) and child >= parent))
    if key == "path":  # null: any path
        return o_path("/" if parent is None and str(child).startswith("/") else
                      "." if parent is None else parent, child)
    if key == "roots":
        return (parent is None or isinstance(parent, list)) and isinstance(child, list) and \
            all(any(o_path(p, c) for p in (parent if parent is not None else ["/", "."])) for c in child)
    if key == "domain":
        return o_domain(parent, child)
    if key == "namespace":
        return o_namespace(parent, child)
    if isinstance(child, list) and (isinstance(parent, list) or (declared and declared.kind == "subset"
                                                                 and parent is None)):
        return parent is None or all(any(o_eq(c, p) for p in parent) for c in child)
    if isinstance(parent, bool):
        return parent is False and child is True
    return False


def o_within(parent: dict, child: dict) -> bool:
    wild = parent.get("*") is True
    if any(k not in child for k in parent):
        return False
    for k, v in child.items():
        if k in parent:
            if not o_key(k, parent[k], v):
                return False
        elif k == "*" or not (wild or v is True):
            return False
    return True


# --- strategies ------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-3, 200) | st.floats(-1, 200, allow_nan=False) | \
    st.sampled_from(["", "a", "*", "/", "a.b", "1"])
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from("ab"), c,
                                                                                       max_size=2), max_leaves=4)
PATHS = ["/", "/home", "/home/me", "/home/me/docs", "/home/mex", "/etc", "/home/me/../../etc", "home", "home/me",
         ".", "/home/./me", "/home/me/", "..", "a\\..\\b"]
DOMAINS = ["example.com", "api.example.com", "evil-example.com", "com", "", "a..b", "EXAMPLE.com", "example.com.",
           "x.api.example.com"]
NAMESPACES = ["*", "fs", "fs.read", "fsx", "fsx.read", "fs.read.x", "", "fs.", "f", "fs*"]
MODELS = ["a", "b", "c", "*", 1, True]

VALUES = {
    "max_steps": st.none() | st.integers(0, 100) | st.floats(0, 100) | json_values,
    "max_width": st.none() | st.integers(0, 4096) | json_values,
    "min_quality": st.none() | st.integers(0, 10) | json_values,
    "allowed_models": st.none() | st.lists(st.sampled_from(MODELS), max_size=4) | json_values,
    "path": st.sampled_from(PATHS) | json_values,
    "roots": st.lists(st.sampled_from(PATHS), max_size=3) | json_values,
    "domain": st.sampled_from(DOMAINS) | json_values,
    "namespace": st.sampled_from(NAMESPACES) | json_values,
    "readonly": st.booleans() | json_values,
    "*": st.booleans() | json_values,
    "label": json_values,
}
VALUES["max_compute"] = VALUES["max_batch"] = VALUES["max_pixels"] = VALUES["max_steps"]
KEYS = list(VALUES)


@st.composite
def param_dicts(draw, keys=KEYS):
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=5))
    return {k: draw(VALUES[k]) for k in chosen}


# --- properties ------------------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.sampled_from(KEYS), st.data())
def test_narrowing_is_reflexive_and_transitive(key, data):
    a, b, c = (data.draw(VALUES[key]) for _ in range(3))
    assert narrows(key, a, a)
    if narrows(key, a, b) and narrows(key, b, c):
        assert narrows(key, a, c), (a, b, c)


@settings(max_examples=600, deadline=None)
@given(param_dicts(), param_dicts())
def test_random_restrictions_never_escalate(parent, restrictions):
    try:
        child = restrict(parent, restrictions)
    except ViwoError:
        return
    assert o_within(parent, child), (parent, restrictions, child)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYS), st.data())
def test_narrows_agrees_with_the_oracle(key, data):
    parent, child = data.draw(VALUES[key]), data.draw(VALUES[key])
    if narrows(key, parent, child):
        assert o_key(key, parent, child), (key, parent, child)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NAMESPACES), st.sampled_from(NAMESPACES + ["fs.read.more", "fsread", "x.fs"]))
def test_namespaces_match_on_dot_boundaries(ns, name):
    if namespace_covers(ns, name):
        assert ns == "*" or name == ns or name.startswith(ns + ".")
        assert o_namespace(ns, name)
    assert not namespace_covers("fs", "fsx.read")


OPS = st.lists(st.tuples(st.sampled_from(["delegate", "mint", "give"]), st.integers(0, 50),
                         param_dicts(KEYS + ["max_compute", "max_batch", "max_pixels"]),
                         st.sampled_from(NAMESPACES + ["fs.read.deep", "diffusers.generate", "sys.mint"]),
                         st.sampled_from([{"id": 7}, {"id": 999}, None, "self", {"id": "self"}])),
               max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.sampled_from(["fs", "fs.read", "*", "diffusers"]),
       param_dicts(["max_steps", "max_width", "allowed_models"]))
def test_no_sequence_of_operations_widens_a_capability(ops, namespace, gen_params):
    gen_params = {k: v for k, v in gen_params.items() if _valid_limit(k, v)}
    rt = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake", "params": gen_params},
                         {"type": "sys.mint", "params": {"namespace": namespace}}], caller={"id": 7})
    caps = rt.caps
    for op, index, params, name, target in ops:
        live = [r for r in caps.records if not r.revoked]
        handle = caps._handle(live[index % len(live)])
        try:
            if op == "delegate":
                caps.delegate(handle, params)
            elif op == "mint":
                caps.mint(handle, name, params)
            else:
                caps.give(handle, target)
        except ViwoError:
            pass
    by_id = {r.id: r for r in caps.records}
    for rec in caps.records:
        assert rec.holder in (caps.self_id, 7)
        if rec.origin == "grant":
            continue
        parent = by_id[rec.parent]
        if rec.origin == "mint":
            # the type lies in the authority's namespace; a minted mint covers no more than its authority
            assert parent.type == "sys.mint"
            assert o_namespace(parent.params["namespace"], rec.type), (parent.params, rec.type)
            if rec.type == "sys.mint":
                assert o_namespace(parent.params["namespace"], rec.params["namespace"])
        else:
            assert rec.origin == "delegate" and rec.type == parent.type
            assert o_within(parent.params, rec.params), (parent.params, rec.params)
            root = rec
            while root.origin == "delegate":
                root = by_id[root.parent]
            assert o_within(root.params, rec.params), (root.params, rec.params)


def _valid_limit(key, value) -> bool:
    if key == "allowed_models":
        return value is None or isinstance(value, list)
    return value is None or (o_num(value) and value >= 0 and math.isfinite(value))


# --- attack scripts --------------------------------------------------------------------------------

LIMITS = {"max_width": 512, "max_height": 512, "max_pixels": 200000, "max_steps": 20, "max_compute": 3,
          "max_batch": 2, "allowed_models": ["fake", "sd15"]}

SETUP = """
(std.let gen (get_capability "diffusers.generate"))
(std.let m (get_capability "sys.mint"))
(std.let anyfs (mint m "fs.any" {"*" true "path" "/home/me"}))
(std.let reader (mint m "fs.read" {"path" "/home/me" "readonly" true}))
(std.let img (obj.get (std.call_method gen "textToImage" "x" {"width" 64 "height" 64 "steps" 1 "seed" 1}) "image"))
(std.let other null)
(std.let narrowmint (delegate m {"namespace" "fs.read"}))
(std.let small (delegate gen {"max_steps" 5}))
"""

ATTACKS = [
    # forged handles: data that looks like a handle is just data
    '(std.call_method {"__brand" "Capability" "type" "diffusers.generate" "id" "cap-1"} "textToImage" "x")',
    '(std.call_method (json.parse (json.stringify gen)) "textToImage" "x")',
    '(std.call_method (std.quote {"__brand" "Capability" "id" "cap-1"}) "textToImage" "x")',
    '(delegate (json.parse (json.stringify gen)) {"max_steps" 1})',
    '(mint {"__brand" "Capability" "type" "sys.mint" "id" "cap-2" "params" {"namespace" "*"}} "x.y" {})',
    '(give_capability (obj.merge {} (json.parse (json.stringify gen))) {"id" 7})',
    # undeclared methods, dunders, Python internals
    *[f'(std.call_method gen "{name}")' for name in (
        "__class__", "__dict__", "__init__", "__getattribute__", "__reduce__", "text_to_image", "check_inputs",
        "load", "unload", "methods", "_record", "_manager", "params", "type", "id", "to_json", "constructor",
        "toString", "mint", "_run", "")],
    '(std.call_method gen ["textToImage"] "x")',
    '(std.call_method gen null "x")',
    *[f'(std.call_method img "{name}")' for name in ("__class__", "pixels", "to_pil", "with_metadata",
                                                      "to_png_bytes", "__array__")],
    '(std.call_method "abc" "__class__")',
    '(std.call_method {"a" 1} "update" {"b" 2})',
    '(std.call_method [1] "append" 2)',
    '(std.call_method m "__init__")',
    # ctx-like objects never reach the context
    '(std.call_method gen "textToImage" "x" {"steps" 1} {"runtime" 1})',
    *[f'(std.call_method gen "textToImage" "x" {{"{key}" {{"max_steps" 1000}}}})' for key in (
        "ctx", "this", "runtime", "params", "self", "context", "__proto__", "grant")],
    '(std.call_method gen "textToImage" {"prompt" "x" "ctx" {"params" {"max_compute" 1e9}}})',
    '(std.call_method gen "textToImage" "x" {"width" gen})',
    # wildcard tricks
    '(delegate gen {"*" true})',
    '(delegate reader {"*" true})',
    '(delegate anyfs {"path" "/etc"})',
    '(delegate anyfs {"path" "/home/me/../../etc"})',
    '(delegate anyfs {"path" "/home/mex"})',
    '(delegate anyfs {"path" null})',
    '(std.call_method (get_capability "fs.any" {"path" "/etc"}) "read" "/etc/passwd")',
    '(std.call_method (get_capability "fs.any" {"*" true "path" "/"}) "read" "/etc/passwd")',
    '(std.call_method (get_capability "fs.read" {"readonly" false}) "write" "x")',
    '(delegate reader {"readonly" false})',
    # namespace prefix tricks
    '(mint m "fsx.read" {})',
    '(mint m "fs*" {})',
    '(mint m "*" {})',
    '(mint m "f" {})',
    '(mint m "fs..read" {})',
    '(mint m "sys.mint" {"namespace" "*"})',
    '(std.call_method m "mint" "fsx.read" {})',
    '(std.call_method m "mint" "sys.mint" {"namespace" "*"})',
    '(delegate m {"namespace" "*"})',
    '(delegate m {"namespace" "f"})',
    '(delegate m {"namespace" "fsx"})',
    '(mint narrowmint "fs.write" {})',
    '(mint narrowmint "fs" {})',
    '(delegate narrowmint {"namespace" "fs"})',
    '(mint gen "fs.read" {})',
    '(mint reader "fs.read" {"path" "/"})',
    # every limit
    '(std.call_method gen "textToImage" "x" {"width" 1024 "height" 64 "steps" 1})',
    '(std.call_method gen "textToImage" "x" {"width" 64 "height" 1024 "steps" 1})',
    '(std.call_method gen "textToImage" "x" {"width" 512 "height" 512 "steps" 1})',
    '(std.call_method gen "textToImage" "x" {"width" 64 "height" 64 "steps" 21})',
    '(std.call_method gen "textToImage" "x" {"width" 512 "height" 384 "steps" 20})',
    '(std.call_method gen "textToImage" "x" {"width" 64 "height" 64 "steps" 1 "batch" 3})',
    '(std.call_method gen "textToImage" "x" {"width" 64 "height" 64 "steps" 1 "model" "sdxl"})',
    '(std.call_method gen "textToImage" "x" {"width" 512 "height" 384 "steps" 20 "max_compute" 1e12})',
    '(std.call_method gen "imageToImage" img "y" {"steps" 21})',
    '(std.call_method gen "imageToImage" img "y" {"batch" 3})',
    '(std.call_method gen "imageToImage" img "y" {"model" "sdxl"})',
    # delegation never widens
    *[f'(delegate gen {{{r}}})' for r in (
        '"max_steps" 21', '"max_steps" null', '"max_compute" 1e9', '"allowed_models" ["fake" "sd15" "sdxl"]',
        '"allowed_models" null', '"max_steps" "20"', '"max_steps" true', '"unknown_key" 1', '"max_batch" (* -1 (^ 10 400))',
        '"max_steps" (/ 0 0)')],
    '(std.call_method small "textToImage" "x" {"width" 64 "height" 64 "steps" 6})',
    '(delegate small {"max_steps" 6})',
    # giving to targets that do not exist
    '(give_capability gen {"id" 999})',
    '(give_capability gen null)',
    '(give_capability gen "caller")',
    '(give_capability gen 7)',
    '(give_capability gen {"name" "bob"})',
    '(give_capability gen (std.this))',
    '(give_capability other {"id" 7})',
]


@pytest.fixture(scope="module")
def attack_env():
    events: list[dict] = []
    rt = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake", "params": LIMITS},
                         {"type": "sys.mint", "params": {"namespace": "fs"}}], caller={"id": 7},
                 on_event=events.append)
    rt.run("(std.seq " + SETUP + ")", scope=rt.globals)
    return rt, events


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_fails_cleanly_and_changes_nothing(attack_env, attack):
    rt, events = attack_env
    before = rt.caps.snapshot()
    events.clear()
    with pytest.raises(ViwoError) as info:
        rt.run(attack, scope=rt.globals)
    assert info.value.message
    assert rt.caps.snapshot() == before
    assert not [e for e in events if e["type"] in ("progress", "image")]


def test_attacks_cover_the_issue_list():
    text = "\n".join(ATTACKS)
    for needle in ("__brand", "__class__", "ctx", '"*" true', "fsx.read", "max_compute", '"id" 999'):
        assert needle in text


def test_parameters_are_copied_not_shared():
    rt = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake"}])
    rt.run('(std.seq (std.let f {"max_steps" 10}) (std.let c (delegate (get_capability "diffusers.generate") f)) '
           '(obj.set f "max_steps" 1000) (std.let j (json.parse (json.stringify c))) '
           '(obj.set (obj.get j "params") "max_steps" 1000))', scope=rt.globals)
    assert rt.run("c", scope=rt.globals).params["max_steps"] == 10
    with pytest.raises(ViwoError, match="max_steps of 10"):
        rt.run('(std.call_method c "textToImage" "x" {"width" 64 "height" 64 "steps" 11})', scope=rt.globals)


def test_a_given_capability_is_gone_for_the_giver():
    rt = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake"}], caller={"id": 7})
    rt.run('(std.seq (std.let g (get_capability "diffusers.generate")) (std.let d (delegate g {"max_steps" 3})) '
           '(give_capability g (std.caller)))', scope=rt.globals)
    for attack in ('(std.call_method g "textToImage" "x")', '(delegate g {"max_steps" 1})',
                   '(give_capability g {"id" 7})'):
        with pytest.raises(ViwoError, match="no longer held"):
            rt.run(attack, scope=rt.globals)
    assert rt.run('(has_capability "diffusers.generate" {"max_steps" 3})', scope=rt.globals) is True
    assert rt.run('(has_capability "diffusers.generate" {"max_steps" 4})', scope=rt.globals) is False


def test_handles_from_another_runtime_are_refused():
    a = Runtime(grants=[{"type": "sys.mint", "params": {"namespace": "*"}}])
    b = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake"}])
    foreign = a.caps.held_by()[0]
    for script in ('(mint (std.arg 0) "anything" {})', '(delegate (std.arg 0) {})',
                   '(std.call_method (std.arg 0) "mint" "x" {})', '(give_capability (std.arg 0) {"id" "self"})'):
        with pytest.raises(ViwoError, match="belongs to another runtime"):
            b.run(script, args=[foreign])
    assert b.caps.held_by()[0].type == "diffusers.generate" and len(b.caps.records) == 1


def test_wildcard_satisfies_only_keys_it_does_not_restrict():
    rt = Runtime(grants=[{"type": "sys.mint", "params": {"namespace": "fs"}}])
    rt.run('(mint (get_capability "sys.mint") "fs.any" {"*" true "path" "/home/me"})')
    assert rt.run('(has_capability "fs.any" {"path" "/home/me/docs"})') is True
    assert rt.run('(has_capability "fs.any" {"domain" "example.com"})') is True
    assert rt.run('(has_capability "fs.any" {"path" "/etc"})') is False
    assert rt.run('(has_capability "fs.any" {"path" "/home/mex"})') is False


def test_wildcard_key_constant():
    assert WILDCARD == "*"
