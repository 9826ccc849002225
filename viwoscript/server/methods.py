"""The core JSON-RPC methods of design §15: metadata, check, execute/submit, jobs, plugin_rpc."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .notify import Connection
from .rpc import CANCELLED, INVALID_PARAMS, SCRIPT_ERROR, MethodRegistry, Param, RpcError

methods = MethodRegistry()

SCRIPT_TYPES = (str, list, dict, int, float, bool, type(None))
MAX_JOBS_LISTED = 1000


@dataclass
class Call:
    """Who is calling: the server, the authenticated user, their client id and socket."""

    server: Any  # viwoscript.server.app.Server (app imports this module, not the other way round)
    user: str
    client_id: str
    conn: Connection | None = None


def _args(args: Any) -> list | None:
    if isinstance(args, dict):
        return list(args.values())
    return args


def _gas(gas: Any) -> int | None:
    if gas is not None and gas < 0:
        raise RpcError(INVALID_PARAMS, f"gas must be >= 0, got {gas}")
    return gas


SCRIPT = Param("script", SCRIPT_TYPES, doc="the text form (a string) or the JSON form (an array or literal)")
ARGS = Param("args", (list, dict, type(None)), None, doc="script arguments (std.arg / std.args)")
GAS = Param("gas", (int, type(None)), None, doc="opcode evaluations allowed (clamped to the server's maximum)")
JOB = Param("job", str, doc="a job id")


@methods.method("get_opcodes")
async def get_opcodes(call: Call) -> list:
    """Every opcode's declaration (design §8 shape)."""
    return call.server.metadata()["opcodes"]


@methods.method("get_capability_metadata")
async def get_capability_metadata(call: Call) -> list:
    """Every granted capability type with its methods (design §8 shape)."""
    return call.server.metadata()["capabilities"]


@methods.method("check_script", SCRIPT)
async def check_script(call: Call, script: Any) -> list:
    """Every problem the static check finds (an empty list when there are none)."""
    return await call.server.check(script)


@methods.method("execute_script", SCRIPT, ARGS, GAS)
async def execute_script(call: Call, script: Any, args: Any, gas: Any) -> dict:
    """Run a script and wait: the finished job record (a failing script is ``status: "error"``)."""
    return await call.server.jobs.submit(call.user, call.client_id,
                                         {"script": script, "args": _args(args), "gas": _gas(gas)}, wait=True)


@methods.method("submit_script", SCRIPT, ARGS, GAS, Param("idempotency_key", (str, type(None)), None))
async def submit_script(call: Call, script: Any, args: Any, gas: Any, idempotency_key: Any) -> dict:
    """Queue a script: its job record at once (``{job, status: "queued", ...}``)."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise RpcError(INVALID_PARAMS, "submit_script: idempotency_key must have 1 to 200 characters")
    return await call.server.jobs.submit(call.user, call.client_id,
                                         {"script": script, "args": _args(args), "gas": _gas(gas)},
                                         idempotency_key=idempotency_key)


@methods.method("get_job", JOB)
async def get_job(call: Call, job: str) -> dict:
    """A job's record (only the owner's jobs are visible; others are unknown, -32004)."""
    return await call.server.jobs.get(call.user, job)


@methods.method("cancel_job", JOB)
async def cancel_job(call: Call, job: str) -> dict:
    """Cancel a queued job (it never starts) or a running one (it stops at its next step); the record."""
    return await call.server.jobs.cancel(call.user, job)


@methods.method("list_jobs", Param("all", bool, False), Param("status", (str, type(None)), None),
                Param("limit", int, 100))
async def list_jobs(call: Call, all: bool, status: Any, limit: int) -> list:  # noqa: A002 - the RPC name
    """This client's jobs, newest first (``all: true``: every job of this user)."""
    if not 1 <= limit <= MAX_JOBS_LISTED:
        raise RpcError(INVALID_PARAMS, f"list_jobs: limit must be from 1 to {MAX_JOBS_LISTED}")
    m = call.server.jobs
    return await m.db(m.jobs.list, call.user, client_id=None if all else call.client_id, status=status, limit=limit)


@methods.method("plugin_rpc", Param("method", str), Param("params", (dict, type(None)), None))
async def plugin_rpc(call: Call, method: str, params: Any) -> dict:
    """The original front end's direct capability call: ``{method: "diffusers.generate", params: {...}}``
    runs that capability's main method (or ``TYPE.methodName``) as a job and returns the method's result
    with ``image_url`` (and ``image_urls``), plus ``job``."""
    cap_type, cap_method = call.server.resolve_capability_method(method)
    params = params or {}
    script = ["std.call_method", ["get_capability", cap_type], cap_method, params]
    rec = await call.server.jobs.submit(call.user, call.client_id, {
        "kind": "call", "capability": cap_type, "method": cap_method, "params": params, "script": script}, wait=True)
    if rec["status"] == "cancelled":
        raise RpcError(CANCELLED, f"plugin_rpc: {method} was cancelled", {"job": rec["job"]})
    if rec["status"] != "done":
        err = rec.get("error") or {}
        raise RpcError(SCRIPT_ERROR, err.get("message", f"plugin_rpc: {method} failed"), {**err, "job": rec["job"]})
    result = rec.get("result")
    out = dict(result) if isinstance(result, dict) else {"result": result}
    image = out.get("image")
    if isinstance(image, dict) and "url" in image:
        out["image_url"] = image["url"]
    urls = [i["url"] for i in out.get("images", []) if isinstance(i, dict) and "url" in i]
    if urls:
        out["image_urls"] = urls
    out["job"] = rec["job"]
    return out
