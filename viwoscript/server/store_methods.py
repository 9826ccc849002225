"""The store methods (design §15): each user's saved images and templates.

Every user has a store of their own (``<data>/users/<name>/``), so one user's images and templates are
never visible to another. Images are saved from files the user may read (an upload or a job's image,
named by ``sha256``, ``blob:{sha256}`` or its ``/blobs/…`` URL).
"""

from __future__ import annotations

from typing import Any

from .blobs import NAME_RE
from .methods import Call
from .rpc import INVALID_PARAMS, NOT_FOUND, MethodRegistry, Param, RpcError

methods = MethodRegistry()
NAME = Param("name", str)


def image_record(rec: dict) -> dict:
    digest = rec.get("blob")
    return {"id": rec["id"], "name": rec["name"], "kind": rec["kind"], "created": rec["created"],
            "updated": rec["updated"], "metadata": rec["metadata"], "sha256": digest,
            "url": f"/blobs/{digest}.png" if digest else None}


def _digest(image: str) -> str:
    name = image
    for prefix in ("blob:", "/blobs/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    m = NAME_RE.match(name)
    if not m:
        raise RpcError(INVALID_PARAMS, "save_image: image must be a sha256, blob:{sha256} or a /blobs/… URL")
    return m.group(1)


async def _in_store(call: Call, fn, *args, **kwargs) -> Any:
    store = call.server.user_store(call.user)
    return await call.server.jobs.slow_db(lambda: fn(store, *args, **kwargs))


@methods.method("list_images", Param("search", (str, type(None)), None), Param("limit", int, 100))
async def list_images(call: Call, search: Any, limit: int) -> list:
    """This user's saved images, oldest first."""
    if not 1 <= limit <= 10_000:
        raise RpcError(INVALID_PARAMS, "list_images: limit must be from 1 to 10000")
    recs = await _in_store(call, lambda s: s.list(owner=call.user, search=search, limit=limit))
    return [image_record(r) for r in recs]


@methods.method("get_image", Param("id", str))
async def get_image(call: Call, id: str) -> dict:  # noqa: A002 - the RPC name
    """One saved image's record."""
    rec = await _in_store(call, lambda s: s.get(id))
    if rec is None or rec.get("owner") != call.user:
        raise RpcError(NOT_FOUND, f"get_image: no image with id {id!r}", {"id": id})
    return image_record(rec)


@methods.method("save_image", NAME, Param("image", str), Param("metadata", (dict, type(None)), None))
async def save_image(call: Call, name: str, image: str, metadata: Any) -> dict:
    """Save an uploaded or produced image (by sha256) to this user's store; its record."""
    digest = _digest(image)
    found = call.server.blobs.find(call.user, digest)
    if found is None:
        raise RpcError(NOT_FOUND, f"save_image: no file {digest} for this user",
                       {"hint": "upload it with POST /blobs first, or use an image a job of yours produced"})
    path = found[0]

    def save(store):
        from ..errors import ViwoError
        from ..io import read_image

        try:
            img = read_image(path, op="save_image")
            return store.save_image(img, name, owner=call.user, metadata=metadata)
        except ViwoError as e:
            raise RpcError(INVALID_PARAMS, e.message, {"hint": e.hint}) from None

    return image_record(await _in_store(call, save))


@methods.method("list_templates")
async def list_templates(call: Call) -> list:
    """This user's templates."""
    return await _in_store(call, lambda s: s.list_templates())


@methods.method("get_template", NAME)
async def get_template(call: Call, name: str) -> dict:
    """One template (by name or id)."""
    from ..errors import ViwoError

    def get(store):
        try:
            return store.template_data(name)
        except ViwoError as e:
            raise RpcError(NOT_FOUND, e.message, {"name": name}) from None

    return await _in_store(call, get)


@methods.method("save_template", Param("template", dict), Param("replace", bool, False))
async def save_template(call: Call, template: dict, replace: bool) -> dict:
    """Save a template (``{name, script, parameters?, description?}``); its script is checked first."""
    from ..errors import ViwoError
    from ..templates import parse_template

    server = call.server

    def save(store):
        try:
            t = parse_template(template, runtime=server.check_runtime(), check=True)
            store.save_template(t, replace=replace)
            return t.to_json()
        except ViwoError as e:
            raise RpcError(INVALID_PARAMS, f"save_template: {e.message}", {"hint": e.hint}) from None

    return await server.run_check(lambda: save(server.user_store(call.user)))


@methods.method("delete_template", NAME)
async def delete_template(call: Call, name: str) -> dict:
    """Delete a template; ``{deleted: true|false}``."""
    return {"deleted": bool(await _in_store(call, lambda s: s.delete_template(name)))}
