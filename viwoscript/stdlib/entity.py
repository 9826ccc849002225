"""``entity.*``: images kept in the Runtime's store (:mod:`viwoscript.store`) as entities.

The host opens a store and sets ``runtime.store`` (the CLI does it with ``--store``, default the user
data folder). ``entity.save`` returns an :class:`ImageEntity` handle whose allowlisted methods are the
original's verbs (``view``, ``get_data``, ``get_metadata``, ``update_image``, ``update_metadata``,
``transform``, ``filter``, ``composite``). Access goes through the capability model
(:mod:`viwoscript.capabilities.entity_control`): without an ``entity.control`` grant every entity can be
read and only the principal's own (or unowned) ones changed; a Runtime granted ``entity.control`` lets a
script read and change exactly what the grants it holds cover.
"""

from __future__ import annotations

from typing import Any

from ..errors import ArgumentError, ScriptError
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import HostValue, Image, to_json_value

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "entity")
    kw.setdefault("pure", False)
    return _opcode(name, *params, into=OPCODES, **kw)


def _store(runtime, op: str):
    store = getattr(runtime, "store", None)
    if store is None:
        raise ScriptError(f"{op}: no entity store in this runtime",
                          hint="the host opens one (viwo --store DIR, or runtime.store = Store(path))")
    return store


def _principal(runtime) -> str | None:
    from ..capabilities.entity_control import principal

    return principal(runtime)


def _check(runtime, rec: dict | None, access: str, op: str, **kw) -> None:
    from ..capabilities.entity_control import check_access

    check_access(runtime, rec, access, op, **kw)


class _Ops:
    """What the image opcodes need from an evaluator, for methods called on a handle."""

    def __init__(self, runtime):
        self.runtime = runtime

    def check_interrupt(self) -> None:
        pass


class ImageEntity(HostValue):
    """A stored image entity. Scripts reach only the methods in ``script_methods``."""

    type_name = "entity"
    script_methods = frozenset({"id", "name", "view", "get_data", "get_metadata", "update_image",
                                "update_metadata", "transform", "filter", "composite", "image"})

    def __init__(self, runtime, record: dict):
        self._runtime = runtime
        self._id = record["id"]
        self._record = record

    # --- reading -----------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._record["name"]

    def _fresh(self, op: str, access: str = "read") -> dict:
        rec = _store(self._runtime, op).require(self._id, op)
        _check(self._runtime, rec, access, op)  # every use: a grant given away or revoked takes effect
        self._record = rec
        return rec

    def view(self) -> dict:
        rec = self._fresh("entity.view")
        img = self.image()
        return {"id": rec["id"], "name": rec["name"], "kind": rec["kind"], "owner": rec["owner"],
                "width": img.width, "height": img.height, "mode": img.mode, "created": rec["created"],
                "updated": rec["updated"], "metadata": rec["metadata"]}

    def image(self) -> Image:
        rec = self._fresh("entity.image")
        img = _store(self._runtime, "entity.image").read_blob(rec["blob"])
        return Image(img.pixels, rec["metadata"])

    def get_data(self) -> str:
        return self.image().to_data_url()

    def get_metadata(self) -> dict:
        return dict(self._fresh("entity.get_metadata")["metadata"])

    # --- changing (owner only) ---------------------------------------------------------------------------
    def _writable(self, op: str) -> dict:
        return self._fresh(op, "write")

    def update_image(self, image: Any = None) -> None:
        op = "entity.update_image"
        if not isinstance(image, Image):
            raise ArgumentError(f"{op}: expected an image")
        self._writable(op)
        self._record = _store(self._runtime, op).update_image(self._id, image)
        return None

    def update_metadata(self, changes: Any = None) -> dict:
        op = "entity.update_metadata"
        if not isinstance(changes, dict):
            raise ArgumentError(f"{op}: expected an object of metadata changes (null removes a key)")
        self._writable(op)
        self._record = _store(self._runtime, op).update_metadata(self._id, _json_data(changes, op))
        return dict(self._record["metadata"])

    def _apply(self, op: str, fn) -> Image:
        self._writable(op)
        out = fn(_Ops(self._runtime), self.image())
        self._record = _store(self._runtime, op).update_image(self._id, out)
        return out

    def transform(self, steps: Any = None) -> Image:
        from .image import transform

        if not isinstance(steps, dict):
            raise ArgumentError("entity.transform: expected an object of steps, e.g. {\"rotate\": 90}")
        return self._apply("entity.transform", lambda ev, img: transform(ev, img, steps))

    def filter(self, name: Any = None, options: Any = None) -> Image:
        from .image import filter_

        if not isinstance(name, str):
            raise ArgumentError("entity.filter: expected a filter name")
        return self._apply("entity.filter", lambda ev, img: filter_(ev, img, name, options))

    def composite(self, overlay: Any = None, options: Any = None) -> Image:
        from .image import composite

        if isinstance(overlay, ImageEntity):
            overlay = overlay.image()
        if not isinstance(overlay, Image):
            raise ArgumentError("entity.composite: overlay must be an image or an entity")
        return self._apply("entity.composite", lambda ev, img: composite(ev, img, overlay, options))

    def to_json(self) -> Any:
        return {"type": "entity", "id": self._id, "name": self._record["name"], "kind": self._record["kind"]}

    def __repr__(self) -> str:
        return f"<entity {self._record['name']} {self._id[:8]}>"


@opcode("entity.save", P("image", "image"), P("name", "string"),
        P("metadata", "object", None, "more metadata (the image's own is kept)"), returns="object", label="Save Entity")
def save(ev, image=None, name=None, metadata=None, *_):
    """Store an image as a new entity owned by this runtime's principal; returns its handle."""
    store = _store(ev.runtime, "entity.save")
    _check(ev.runtime, None, "write", "entity.save", owner=_principal(ev.runtime), kind="image")
    rec = store.save_image(image, name, owner=_principal(ev.runtime), metadata=_json_data(metadata, "entity.save", ev))
    return ImageEntity(ev.runtime, rec)


def _json_data(value: Any, op: str, budget: Any = None) -> Any:
    """Metadata as JSON data, its walk held to the limits; a value that contains itself is an error."""
    try:
        return to_json_value(value, budget, op)
    except ValueError:
        raise ScriptError(f"{op}: the metadata contains itself", hint="metadata is JSON data: build it without "
                          "the self-reference") from None


@opcode("entity.get", P("id", "string", description="an entity id, or a unique prefix of one (at least 4 characters)"),
        returns="object", label="Get Entity")
def get(ev, id=None, *_):
    """The entity with this id (or unique id prefix, like git's) as a handle, or null. An error when the
    prefix matches several entities, or when it exists but the script's entity.control grants do not
    cover it."""
    rec = _store(ev.runtime, "entity.get").find(id, "entity.get")
    if rec is None:
        return None
    _check(ev.runtime, rec, "read", "entity.get")
    return ImageEntity(ev.runtime, rec)


@opcode("entity.list", P("options", "object", None, "{kind, search (text in the name or metadata, or an id prefix), mine, limit}"),
        returns="array", label="List Entities")
def list_(ev, options=None, *_):
    """Stored entities the script may read, as objects {id, name, kind, owner, created, updated, metadata},
    oldest first."""
    op = "entity.list"
    opts = options or {}
    for key in opts:
        if key not in ("kind", "search", "mine", "limit"):
            raise ArgumentError(f"{op}: unknown option '{key}'", hint="options: kind, search, mine, limit")
    limit = opts.get("limit", 1000)
    if type(limit) not in (int, float) or not 1 <= limit <= 100_000:
        raise ArgumentError(f"{op}: limit must be a number from 1 to 100000")
    recs = _store(ev.runtime, op).list(kind=opts.get("kind"), search=opts.get("search"), limit=int(limit),
                                       owner=_principal(ev.runtime) if opts.get("mine") else None)
    from ..capabilities.entity_control import readable

    recs = readable(ev.runtime, recs)
    for r in recs:
        r.pop("blob", None)
    return recs


@opcode("entity.delete", P("id", "string", description="an entity id, or a unique prefix of one"),
        returns="boolean", label="Delete Entity")
def delete(ev, id=None, *_):
    """Delete an entity (one the script may change) by id or unique id prefix; true when it existed."""
    op = "entity.delete"
    store = _store(ev.runtime, op)
    rec = store.find(id, op)
    if rec is None:
        return False
    ImageEntity(ev.runtime, rec)._writable(op)
    return store.delete(rec["id"])
