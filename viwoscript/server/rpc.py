"""JSON-RPC 2.0: the method registry, parameter checking, dispatch and error codes (design §15).

A method is an ``async def handler(call: Call, **params)`` registered with its parameters::

    @methods.method("get_job", Param("job", str))
    async def get_job(call, job): ...

Params are by name (an object, or absent). Unknown names, missing required ones and wrong types are
``-32602`` errors naming the parameter; a handler raises :class:`RpcError` for anything else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SCRIPT_ERROR = -32000
CANCELLED = -32001
QUEUE_FULL = -32002
NOT_FOUND = -32003
UNKNOWN_JOB = -32004

_MISSING = object()


class RpcError(Exception):
    """A JSON-RPC error answer: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


@dataclass(frozen=True)
class Param:
    """One named parameter: accepted Python types (JSON ``null`` only with ``None`` among them)."""

    name: str
    types: type | tuple[type, ...] = object
    default: Any = _MISSING
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def check(self, method: str, value: Any) -> Any:
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        if object in types:
            return value
        ok = any(isinstance(value, t) and not (t in (int, float) and isinstance(value, bool)) for t in types
                 if t is not type(None)) or (value is None and type(None) in types)
        if not ok:
            names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise RpcError(INVALID_PARAMS, f"{method}: parameter {self.name!r} must be {names}, "
                           f"got {_TYPE_NAMES.get(type(value), type(value).__name__)}")
        return value


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
               dict: "an object", type(None): "null"}

Handler = Callable[..., Awaitable[Any]]


@dataclass
class Method:
    name: str
    handler: Handler
    params: tuple[Param, ...] = ()
    doc: str = ""

    def bind(self, params: Any) -> dict:
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, f"{self.name}: params must be an object (parameters by name)",
                           {"expected": [p.name for p in self.params]})
        known = {p.name: p for p in self.params}
        unknown = [k for k in params if k not in known]
        if unknown:
            raise RpcError(INVALID_PARAMS, f"{self.name}: unknown parameter {unknown[0]!r}",
                           {"expected": list(known)})
        out = {}
        for p in self.params:
            if p.name in params:
                out[p.name] = p.check(self.name, params[p.name])
            elif p.required:
                raise RpcError(INVALID_PARAMS, f"{self.name}: missing parameter {p.name!r}",
                               {"expected": list(known)})
            else:
                out[p.name] = p.default
        return out


@dataclass
class MethodRegistry:
    """Name → :class:`Method`. The server's core methods, the store methods and the live canvas
    session methods (helper modules) all register here."""

    methods: dict[str, Method] = field(default_factory=dict)

    def method(self, name: str, *params: Param, doc: str = "") -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add(name, fn, *params, doc=doc or (fn.__doc__ or "").strip())
            return fn

        return deco

    def add(self, name: str, handler: Handler, *params: Param, doc: str = "") -> None:
        if name in self.methods:
            raise ValueError(f"RPC method {name!r} is already registered")
        self.methods[name] = Method(name, handler, tuple(params), doc)

    def update(self, other: MethodRegistry) -> None:
        for m in other.methods.values():
            self.add(m.name, m.handler, *m.params, doc=m.doc)

    def get(self, name: str) -> Method | None:
        return self.methods.get(name)


def parse_message(text: str | bytes, max_size: int) -> Any:
    """The decoded JSON of one WebSocket message, or an :class:`RpcError` answer to send back."""
    if len(text) > max_size:
        raise RpcError(INVALID_REQUEST, f"message of {len(text)} bytes exceeds the limit of {max_size} bytes",
                       {"limit": max_size})
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise RpcError(PARSE_ERROR, f"parse error: {e}") from None


def error_response(req_id: Any, err: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}


def result_response(req_id: Any, result: Any) -> dict:
    return {"jsonrpc": "2.0", "id": req_id, "result": result}


def notification(method: str, params: dict) -> dict:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def check_request(msg: Any) -> tuple[Any, str, Any, bool]:
    """``(id, method, params, is_notification)`` of a request object, or an RpcError (-32600)."""
    if not isinstance(msg, dict):
        raise RpcError(INVALID_REQUEST, "invalid request: expected a JSON object (or an array of them)")
    req_id = msg.get("id")
    if req_id is not None and not isinstance(req_id, str | int | float) or isinstance(req_id, bool):
        raise RpcError(INVALID_REQUEST, "invalid request: id must be a string, a number or null")
    if msg.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
    method = msg.get("method")
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, "invalid request: method must be a string")
    return req_id, method, msg.get("params"), "id" not in msg
