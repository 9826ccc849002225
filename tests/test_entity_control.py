"""Entity ownership through the capability model: the entity.control grant (security tests)."""

from __future__ import annotations

import numpy as np
import pytest

from viwoscript.errors import CapabilityError
from viwoscript.runtime import Runtime
from viwoscript.stdlib.entity import ImageEntity
from viwoscript.store import Store
from viwoscript.values import Image


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s")
    yield s
    s.close()


def rt_for(store, principal, grants=None, caller=None):
    rt = Runtime(grants=grants, principal=principal, caller=caller)
    rt.store = store
    return rt


def control(**params):
    return [{"type": "entity.control", "params": params}]


def red(w=4, h=2):
    px = np.zeros((h, w, 4), np.uint8)
    px[...] = (255, 0, 0, 255)
    return Image(px)


@pytest.fixture
def adas(store):
    """An entity owned by ada and one without an owner."""
    mine = store.save_image(red(), "ada's comet", owner="ada", metadata={"k": 1})
    shared = store.save_image(red(2, 2), "shared", owner=None)
    return mine["id"], shared["id"]


def state(store, eid):
    rec = store.get(eid)
    return rec["blob"], rec["metadata"], rec["updated"]


CHANGES = ['(std.call_method (entity.get "{id}") "update_metadata" {{"k" 2}})',
           '(std.call_method (entity.get "{id}") "update_image" (image.new 1 1 "blue"))',
           '(std.call_method (entity.get "{id}") "transform" {{"rotate" 90}})',
           '(std.call_method (entity.get "{id}") "filter" "invert")',
           '(std.call_method (entity.get "{id}") "composite" (image.new 1 1 "blue"))',
           '(entity.delete "{id}")']


@pytest.mark.parametrize("change", CHANGES)
def test_without_a_grant_another_owners_entity_cannot_be_changed(store, adas, change):
    ada_id, _ = adas
    before = state(store, ada_id)
    bob = rt_for(store, "bob")
    with pytest.raises(CapabilityError, match=f"entity {ada_id} belongs to ada"):
        bob.run(change.format(id=ada_id))
    assert state(store, ada_id) == before
    # reading is the built-in rule's default
    assert bob.run(f'(std.call_method (entity.get "{ada_id}") "get_metadata")') == {"k": 1}


@pytest.mark.parametrize("change", CHANGES)
def test_a_grant_for_self_cannot_change_or_even_read_another_owners_entity(store, adas, change):
    ada_id, _ = adas
    before = state(store, ada_id)
    bob = rt_for(store, "bob", control())  # the default: owners ["self"]
    with pytest.raises(CapabilityError, match=f"cannot (read|change) entity {ada_id} \\(image, owner ada\\): no "
                                              "entity.control grant of this script covers it"):
        bob.run(change.format(id=ada_id))
    assert state(store, ada_id) == before
    assert bob.run("(entity.list)") == []
    mine = bob.run('(entity.save (image.new 2 2 "green") "bob\'s")')
    assert [r["name"] for r in bob.run("(entity.list)")] == ["bob's"]
    bob.run(f'(std.call_method (entity.get "{mine.id}") "update_metadata" {{"ok" true}})')


def test_owners_kinds_and_null_for_unowned(store, adas):
    ada_id, shared_id = adas
    bob = rt_for(store, "bob", control(owners=["self", "ada"]))
    assert bob.run(f'(std.call_method (entity.get "{ada_id}") "update_metadata" {{"k" 2}})') == {"k": 2}
    with pytest.raises(CapabilityError, match="no owner"):
        bob.run(f'(entity.get "{shared_id}")')
    bob = rt_for(store, "bob", control(owners=[None]))
    assert [r["id"] for r in bob.run("(entity.list)")] == [shared_id]
    assert bob.run(f'(entity.delete "{shared_id}")') is True
    with pytest.raises(CapabilityError, match="cannot change a new image entity"):  # bob's own: not covered
        bob.run('(entity.save (image.new 1 1 "red") "x")')
    nobody = rt_for(store, None, control())  # no principal: "self" means no owner
    assert nobody.run('(obj.get (std.call_method (entity.save (image.new 1 1 "red") "x") "view") "owner")') is None
    masks_only = rt_for(store, "ada", control(kinds=["mask"]))
    with pytest.raises(CapabilityError, match=r"cannot read entity .* \(image, owner ada\)"):
        masks_only.run(f'(entity.get "{ada_id}")')


def test_readonly_reads_but_never_writes(store, adas):
    ada_id, _ = adas
    ada = rt_for(store, "ada", control(readonly=True))
    assert ada.run(f'(image.size (std.call_method (entity.get "{ada_id}") "image"))') == [4, 2]
    before = state(store, ada_id)
    for change in CHANGES:
        with pytest.raises(CapabilityError, match="entity.control grant is readonly"):
            ada.run(change.format(id=ada_id))
    with pytest.raises(CapabilityError, match="cannot change a new image entity"):
        ada.run('(entity.save (image.new 1 1 "red") "x")')
    assert state(store, ada_id) == before


def test_delegation_cannot_widen(store, adas):
    rt = rt_for(store, "bob", control(owners=["self"], kinds=["image"], readonly=True))
    snapshot = rt.caps.snapshot()
    for restriction, what in (('{"owners" ["self" "ada"]}', "owners"), ('{"owners" null}', "owners"),
                              ('{"kinds" null}', "kinds"), ('{"kinds" ["image" "mask"]}', "kinds"),
                              ('{"readonly" false}', "readonly"), ('{"*" true}', "wildcard")):
        with pytest.raises(CapabilityError, match=f"restriction '{what}' would expand permissions|cannot add the wildcard"):
            rt.run(f'(delegate (get_capability "entity.control") {restriction})')
    assert rt.caps.snapshot() == snapshot
    narrower = rt.run('(delegate (get_capability "entity.control") {"owners" []})')
    assert narrower.params == {"owners": [], "kinds": ["image"], "readonly": True}


def test_a_narrowed_delegate_is_all_that_is_left_after_giving_the_grant_away(store, adas):
    ada_id, _ = adas
    ada = rt_for(store, "ada", control(), caller={"id": "app"})
    ada.run('(std.seq (delegate (get_capability "entity.control") {"readonly" true})'
            ' (give_capability (get_capability "entity.control" {"readonly" false}) (std.caller)))')
    assert [h.params["readonly"] for h in ada.caps.held_by()] == [True]
    # only the readonly delegate is held now: reading works, changing is refused
    assert ada.run(f'(std.call_method (entity.get "{ada_id}") "get_metadata")') == {"k": 1}
    with pytest.raises(CapabilityError, match="readonly"):
        ada.run(f'(std.call_method (entity.get "{ada_id}") "update_metadata" {{"k" 3}})')
    # giving the last one away never falls back to the wider built-in rule
    ada.run('(give_capability (get_capability "entity.control") (std.caller))')
    with pytest.raises(CapabilityError, match="no longer holds an entity.control grant"):
        ada.run(f'(entity.get "{ada_id}")')


def test_a_handle_rechecks_on_every_use_and_revoke_takes_effect(store, adas):
    ada_id, _ = adas
    ada = rt_for(store, "ada", control())
    handle = ada.run(f'(entity.get "{ada_id}")')
    ada.caps.revoke(ada.caps.held_by()[0])
    with pytest.raises(CapabilityError, match="no longer holds"):
        handle.get_metadata()
    with pytest.raises(CapabilityError, match="no longer holds"):
        handle.update_metadata({"k": 5})
    assert store.get(ada_id)["metadata"] == {"k": 1}


def test_covers_method_and_overlay_entities_need_read_access(store, adas):
    ada_id, shared_id = adas
    bob = rt_for(store, "bob", control(owners=["self", None]))
    assert bob.run(f'(std.call_method (get_capability "entity.control") "covers" "{shared_id}" "write")') is True
    assert bob.run(f'(std.call_method (get_capability "entity.control") "covers" "{shared_id[:8]}" "write")') is True  # a prefix
    assert bob.run(f'(std.call_method (get_capability "entity.control") "covers" "{ada_id}")') is False
    assert bob.run('(std.call_method (get_capability "entity.control") "covers" "nope")') is False
    # a handle the host passes in (as an argument) is checked like one the script got itself
    theirs = ImageEntity(bob, store.get(ada_id))
    mine = bob.run('(entity.save (image.new 4 4 "white") "mine")')
    with pytest.raises(CapabilityError, match="cannot read entity"):
        bob.run('(std.call_method (std.arg 0) "composite" (std.arg 1))', args=[mine, theirs])
    assert bob.run('(std.call_method (std.arg 0) "view")', args=[mine])["metadata"] == {}


def test_not_granted_by_default_and_declared_in_metadata():
    rt = Runtime(grants="default")
    assert rt.run('(has_capability "entity.control")') is False
    meta = next(m for m in rt.capability_metadata() if m["type"] == "entity.control")
    assert [m["name"] for m in meta["methods"]] == ["covers"]
    row = next(r for r in rt.caps.status() if r["type"] == "entity.control")
    assert [lim["name"] for lim in row["limits"]] == ["owners", "kinds", "readonly"]
