"""``entity.control``: which stored entities a script may read and change (docs/images.md, "Ownership").

Without an ``entity.control`` grant a Runtime applies the built-in rule: every entity can be read, and
only the Runtime's principal's own entities (and entities without an owner) can be changed or deleted.

A host that grants ``entity.control`` (``Runtime(grants=[{"type": "entity.control", "params": {...}}])``
or a ``[[grants]]`` table in viwo.toml) switches that Runtime to the grant rule: an entity can be read
only when some ``entity.control`` the script *holds* covers it, and changed only when such a grant is
also not ``readonly``. A grant covers an entity when

- ``owners`` (null: any owner) lists its owner; ``"self"`` stands for the Runtime's principal (entities a
  principal-less Runtime saves have no owner, and ``"self"`` then means "no owner"), ``null`` in the list
  for entities without an owner;
- ``kinds`` (null: any kind) lists its kind (``"image"`` for images).

Creating an entity (``entity.save``) is a change to an entity owned by the principal. The mode is fixed
once granted: giving the grant away (``give_capability``) or having it revoked leaves the script with
less access, never the wider built-in rule. ``delegate`` narrows it like any grant (``owners`` and
``kinds`` may only lose items, ``readonly`` may only turn on), so a script can hand a narrower grant to
another entity and never a wider one.
"""

from __future__ import annotations

from typing import Any

from ..errors import CapabilityError
from .base import Capability, Limit, ParamSpec, method

TYPE = "entity.control"
SELF = "self"


class EntityControl(Capability):
    type = TYPE
    label = "Control stored entities"
    description = ("Which stored entities (images in the store) a script may read and change: by owner "
                   "(\"self\" is the script's principal), by kind, or read-only. Granting it replaces the "
                   "built-in rule (read anything, change only your own).")
    default_grant = False
    limits = (
        Limit("owners", "array", [SELF], "Owners whose entities this grant covers (\"self\": the script's "
              "principal; null in the list: entities without an owner; null: any owner)", kind="subset"),
        Limit("kinds", "array", None, "Entity kinds covered (null: every kind)", kind="subset"),
        Limit("readonly", "boolean", False, "Read only: no saving, changing or deleting", kind="flag"),
    )

    @method("covers", ParamSpec("id", "string", description="An entity id, or a unique prefix of one"),
            ParamSpec("access", "string", "read", "read or write", choices=("read", "write")),
            returns="boolean", label="Covers")
    def covers(self, ctx, id, access):  # noqa: A002 - the declared parameter name scripts use
        """Whether this grant lets the script read (or write) the entity with this id; false when there is
        no such entity."""
        store = getattr(ctx.runtime, "store", None)
        rec = store.find(id, "entity.control covers") if store is not None else None
        if rec is None:
            return False
        return grant_covers(ctx.params, rec["owner"], rec["kind"], principal(ctx.runtime), access)


def principal(runtime) -> str | None:
    p = getattr(runtime, "principal", None)
    if p is None:
        return None
    return p if isinstance(p, str) else str(getattr(p, "id", p))


def grant_covers(params: dict, owner: str | None, kind: str, me: str | None, access: str) -> bool:
    """Whether one grant's params cover an entity of ``owner`` and ``kind`` for ``access``."""
    owners = params.get("owners")
    if owners is not None and not any((me if o == SELF else o) == owner for o in owners):
        return False
    kinds = params.get("kinds")
    if kinds is not None and kind not in kinds:
        return False
    return not (access == "write" and params.get("readonly") is True)


def held_grants(runtime) -> list[dict] | None:
    """The params of every live ``entity.control`` the script holds, or ``None`` when the Runtime was never
    granted one (the built-in rule applies)."""
    caps = runtime.caps
    records = [r for r in caps.records if r.type == TYPE]
    if not records:
        return None
    return [r.params for r in records if not r.revoked and r.holder == caps.self_id]


def check_access(runtime, rec: dict | None, access: str, op: str, *, owner: Any = None,
                 kind: str = "image") -> None:
    """Raise :class:`CapabilityError` unless the script may ``access`` ("read" or "write") the entity
    ``rec`` (or, for ``rec=None``, a new entity of ``owner`` and ``kind``)."""
    me = principal(runtime)
    if rec is not None:
        owner, kind = rec["owner"], rec["kind"]
    grants = held_grants(runtime)
    what = f"entity {rec['id']}" if rec is not None else f"a new {kind} entity"
    if grants is None:
        if access == "write" and owner is not None and owner != me:
            raise CapabilityError(f"{op}: {what} belongs to {owner}",
                                  hint="only its owner may change it (or a script granted entity.control "
                                       "for that owner)")
        return
    if any(grant_covers(g, owner, kind, me, access) for g in grants):
        return
    whose = "no owner" if owner is None else f"owner {owner}"
    verb = "read" if access == "read" else "change"
    if not grants:
        why = "this script no longer holds an entity.control grant"
    elif access == "write" and any(grant_covers(g, owner, kind, me, "read") for g in grants):
        why = "this script's entity.control grant is readonly"
    else:
        why = "no entity.control grant of this script covers it"
    raise CapabilityError(f"{op}: cannot {verb} {what} ({kind}, {whose}): {why}",
                          hint="the host sets owners, kinds and readonly in the entity.control grant")


def readable(runtime, records: list[dict]) -> list[dict]:
    """The records the script may read (all of them under the built-in rule)."""
    grants = held_grants(runtime)
    if grants is None:
        return records
    me = principal(runtime)
    return [r for r in records if any(grant_covers(g, r["owner"], r["kind"], me, "read") for g in grants)]
