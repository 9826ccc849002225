"""The aiohttp application: routes, the WebSocket JSON-RPC loop, and the :class:`Server` tying parts together.

Routes (all behind :mod:`.auth`): ``GET /`` (the web UI, or a placeholder page), ``GET /rpc`` (WebSocket
JSON-RPC), ``POST /blobs`` and ``GET /blobs/{sha256}.{ext}``, ``GET /api/health``, and the UI's static files.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from .. import __version__
from ..errors import ScriptError
from . import METHOD_MODULES
from .auth import USER_KEY, middleware
from .blobs import NAME_RE, BlobFiles, UploadError
from .config import ServerConfig
from .jobs import JobManager, node_path, script_text
from .methods import Call
from .notify import Connection, Hub, encode
from .rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MethodRegistry,
    RpcError,
    check_request,
    error_response,
    parse_message,
    result_response,
)

log = logging.getLogger("viwoscript.server")

#: Requests one socket may have in flight at once (more wait their turn).
MAX_IN_FLIGHT = 256
MAX_CLIENT_ID = 200
HEARTBEAT_S = 20.0
SERVER_KEY: web.AppKey[Server] = web.AppKey("viwo_server")
_SAFE_USER = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("viwoscript")) / "server"


class Server:
    """One ``viwo serve`` instance: configuration, store, executor, job queue, hub and RPC methods.

    It is also the local executor's host: per-user stores for entity opcodes, ``blob:`` sources.
    """

    def __init__(self, config: ServerConfig, *, executor=None):
        from ..executors import get_executor
        from ..store import Store

        self.config = config
        self.data = Path(config.data) if config.data else default_data_dir()
        self.data.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data)
        self._user_stores: dict[str, Any] = {}
        self._models = None
        self._lock = threading.Lock()
        self.hub = Hub()
        self.registry = MethodRegistry()
        self.modules = [importlib.import_module(name) for name in METHOD_MODULES]
        for module in self.modules:
            self.registry.update(module.methods)
        if executor is None and config.executor_config is not None:
            from ..executors.settings import make_executor

            executor = make_executor(config.executor_config, slots=config.slots, host=self, models=config.models)
        self.executor = executor or get_executor(config.executor, slots=config.slots, host=self)
        from ..store.jobs import Jobs

        rows = Jobs(self.store)
        self.blobs = BlobFiles(self.data / "files", rows, self.user_store)
        self.jobs = JobManager(config, rows, self.executor, self.hub, self.blobs)
        self._meta: dict | None = None
        self._check_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viwo-check")
        self._check_rt = None

    # --- host for the executor --------------------------------------------------------------------
    def runtime_kwargs(self, user: str) -> dict:
        return {"store": self.user_store(user), **self.config.runtime_kwargs}

    def resolve_blob(self, user: str, digest: str, op: str) -> Path:
        found = self.blobs.find(user, digest.split(".")[0])
        if found is None:
            raise ScriptError(f"{op}: no upload blob:{digest[:80]}",
                              hint="upload the image with POST /blobs and use the sha256 it returns")
        return found[0]

    def model_manager(self):
        """One model manager for every job of this server (created when a capability first needs it)."""
        with self._lock:
            if self._models is None:
                from ..models.manager import ModelManager

                self._models = ModelManager()
            return self._models

    def user_store(self, user: str, *, create: bool = True):
        with self._lock:
            store = self._user_stores.get(user)
            if store is None:
                import hashlib

                from ..store import Store

                name = user if _SAFE_USER.match(user) else "u-" + hashlib.sha256(user.encode()).hexdigest()[:32]
                folder = self.data / "users" / name
                if not create and not folder.is_dir():
                    return None
                store = self._user_stores[user] = Store(folder)
            return store

    # --- metadata and checking --------------------------------------------------------------------
    def check_runtime(self):
        """A Runtime with the server's grants, for static checks (used on the check thread only)."""
        if self._check_rt is None:
            from ..runtime import Runtime

            self._check_rt = Runtime(grants=self.config.grants, limits=self.config.limits,
                                     canvas_size=self.config.canvas_size, runner=self.config.runner,
                                     **{k: v for k, v in self.config.runtime_kwargs.items() if k != "store"})
        return self._check_rt

    async def run_check(self, fn):
        return await asyncio.get_running_loop().run_in_executor(self._check_pool, fn)

    def metadata(self) -> dict:
        if self._meta is None:
            rt = self.check_runtime()
            self._meta = {"opcodes": rt.opcodes_metadata(), "capabilities": rt.capability_metadata()}
        return self._meta

    async def check(self, script: Any) -> list:
        text = script_text(script)

        def run():
            rt = self.check_runtime()
            diags = rt.check(text)
            tree = None
            out = []
            for d in diags:
                item = d.to_dict()
                item.pop("file", None)
                if d.span:
                    if tree is None:
                        try:
                            tree = rt.parse(text)
                        except Exception:  # noqa: BLE001 - a syntax error has no tree to point into
                            tree = False
                    item["path"] = node_path(tree, d.span) if tree else None
                else:
                    item["path"] = None
                out.append(item)
            return out

        if self._meta is None:
            await self.run_check(self.metadata)
        return await self.run_check(run)

    def resolve_capability_method(self, name: str) -> tuple[str, str]:
        caps = {c["type"]: c for c in self.metadata()["capabilities"]}
        if name in caps:
            methods = caps[name]["methods"]
            main = next((m for m in methods if m.get("returnType") == "object"), methods[0] if methods else None)
            if main is None:
                raise RpcError(INVALID_PARAMS, f"plugin_rpc: capability {name!r} has no methods")
            return name, main["name"]
        cap, _, method = name.rpartition(".")
        if cap in caps and any(m["name"] == method for m in caps[cap]["methods"]):
            return cap, method
        raise RpcError(INVALID_PARAMS, f"plugin_rpc: unknown capability method {name!r}",
                       {"known": sorted(caps)})

    # --- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.jobs.start()
        for module in self.modules:
            hook = getattr(module, "setup", None)
            if hook is not None:
                await hook(self)

    async def stop(self) -> None:
        for module in self.modules:
            hook = getattr(module, "cleanup", None)
            if hook is not None:
                await hook(self)
        await self.jobs.stop()
        self._check_pool.shutdown(wait=False)
        with self._lock:
            stores = list(self._user_stores.values())
            self._user_stores.clear()
        for store in stores:
            store.close()
        self.jobs.jobs.close()
        self.store.close()

    # --- RPC --------------------------------------------------------------------------------------
    async def dispatch(self, call: Call, text: str | bytes) -> str | None:
        """The JSON text answering one WebSocket message (None for notifications only)."""
        try:
            msg = parse_message(text, self.config.max_message_size)
        except RpcError as e:
            return _dumps(error_response(None, e))
        if isinstance(msg, list):
            if not msg:
                return _dumps(error_response(None, RpcError(INVALID_REQUEST, "invalid request: empty batch")))
            answers = await asyncio.gather(*(self._one(call, m) for m in msg))
            answers = [a for a in answers if a is not None]
            return "[" + ",".join(answers) + "]" if answers else None
        return await self._one(call, msg)

    async def _one(self, call: Call, msg: Any) -> str | None:
        """The JSON text of the answer to one request (encoded once, here: a result that is not JSON
        becomes an internal error now, not a dead socket later)."""
        req_id = msg.get("id") if isinstance(msg, dict) else None
        try:
            req_id, name, params, is_notification = check_request(msg)
            method = self.registry.get(name)
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, f"method not found: {name!r}",
                               {"methods": sorted(self.registry.methods)})
            result = await method.handler(call, **method.bind(params))
            if is_notification:
                return None
            return _dumps(result_response(req_id, result))
        except RpcError as e:
            if not isinstance(req_id, str | int | float) or isinstance(req_id, bool):
                req_id = None
            return _dumps(error_response(req_id, e))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - nothing a client sends may crash the server
            log.exception("RPC %s failed", msg.get("method") if isinstance(msg, dict) else "?")
            return _dumps(error_response(req_id if isinstance(req_id, str | int) else None,
                                         RpcError(INTERNAL_ERROR, "internal error (see the server log)")))


_dumps = encode


# --- HTTP handlers -----------------------------------------------------------------------------------
async def rpc_socket(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER_KEY]
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.json_response({"error": "/rpc is a WebSocket (JSON-RPC 2.0)",
                                  "hint": "connect with a WebSocket client; see docs/server.md"}, status=400)
    client_id = request.query.get("client_id") or uuid.uuid4().hex
    if len(client_id) > MAX_CLIENT_ID:
        return web.json_response({"error": f"client_id longer than {MAX_CLIENT_ID} characters"}, status=400)
    # aiohttp's own limit is a hard cap well above ours: a message over ours gets a JSON-RPC error and
    # keeps the socket; one over the cap closes it (1009), as nothing else can be done without reading it.
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=server.config.max_message_size * 4 + 65536)
    await ws.prepare(request)
    user = request[USER_KEY]
    conn = Connection(ws, user, client_id, request.transport)
    server.hub.add(conn)
    call = Call(server, user, client_id, conn)
    # Reconnect: the state of this client's unfinished jobs.
    for rec in await server.jobs.db(server.jobs.jobs.unfinished, user, client_id):
        conn.send({"jsonrpc": "2.0", "method": "job.status", "params": {"job": rec["job"], "status": rec["status"]}})
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task] = set()

    async def handle(data):
        async with in_flight:
            answer = await server.dispatch(call, data)
        if answer is not None:
            conn.send(answer)

    try:
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if msg.type == WSMsgType.BINARY:
                    conn.send(_dumps(error_response(None, RpcError(
                        INVALID_REQUEST, "invalid request: send JSON-RPC as text frames (binary frames are "
                        "server → client)"))))
                    continue
                task = asyncio.get_running_loop().create_task(handle(msg.data))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        server.hub.remove(conn)
        for task in list(tasks):
            task.cancel()  # stops waiting (execute_script); the jobs themselves go on
        for module in server.modules:
            hook = getattr(module, "connection_closed", None)
            if hook is not None:
                try:
                    await hook(call)
                except Exception:  # noqa: BLE001
                    log.exception("connection_closed hook of %s failed", module.__name__)
        await conn.close()
    return ws


async def health(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    queued = await server.jobs.db(server.jobs.jobs.queued_count)
    return web.json_response({"status": "ok", "version": __version__, "user": request[USER_KEY],
                              "executor": server.executor.name, "slots": server.executor.slots,
                              "queued": queued, "running": len(server.jobs._running), "connections": len(server.hub)})


async def upload(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    limit = server.config.max_upload_size
    if request.content_length is not None and request.content_length > limit + 65536:
        return _too_large(limit)
    try:
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            data = None
            while (part := await reader.next()) is not None:
                if getattr(part, "name", None) == "file":
                    data = await part.read(decode=False)
                    break
            if data is None:
                return web.json_response({"error": "multipart upload without a `file` field"}, status=400)
        else:
            data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large(limit)
    if len(data) > limit:
        return _too_large(limit)
    if not data:
        return web.json_response({"error": "empty upload", "hint": "send the image bytes as the body"}, status=400)
    try:
        info = await asyncio.get_running_loop().run_in_executor(None, server.blobs.put_upload, request[USER_KEY], data)
    except UploadError as e:
        return web.json_response({"error": str(e)}, status=415)
    return web.json_response(info, status=201)


def _too_large(limit: int) -> web.Response:
    return web.json_response({"error": f"upload larger than {limit} bytes",
                              "hint": "raise [server] max_upload_size in viwo.toml"}, status=413)


async def download(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER_KEY]
    m = NAME_RE.match(request.match_info["name"])
    found = server.blobs.find(request[USER_KEY], m.group(1)) if m else None
    if found is None:
        return web.json_response({"error": "no such file"}, status=404)
    path, mime = found
    return web.FileResponse(path, headers={"Content-Type": mime,
                                           "Cache-Control": "private, max-age=31536000, immutable"})


PLACEHOLDER = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>viwoscript</title></head>
<body><h1>viwoscript server</h1><p>The web UI is not installed in this build. The JSON-RPC socket is at
<code>/rpc</code>, files at <code>/blobs</code>, health at <code>/api/health</code>; see docs/server.md.</p>
</body></html>"""


def web_root() -> Path | None:
    root = Path(__file__).resolve().parent.parent / "web"
    return root if (root / "index.html").is_file() else None


async def index(request: web.Request) -> web.StreamResponse:
    root = web_root()
    if root is None:
        return web.Response(text=PLACEHOLDER, content_type="text/html")
    return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})


async def static(request: web.Request) -> web.StreamResponse:
    root = web_root()
    rel = request.match_info["path"]
    if root is not None and rel and not any(p in ("..", "") or p.startswith(".") for p in rel.split("/")):
        path = (root / rel).resolve()
        if path.is_file() and root in path.parents and path.suffix != ".py":
            return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
    return web.json_response({"error": "not found"}, status=404)


def make_app(config: ServerConfig, *, server: Server | None = None) -> web.Application:
    """The aiohttp application for ``config`` (the server starts and stops with it)."""
    app = web.Application(middlewares=[middleware(config)], client_max_size=config.max_upload_size + 65536)
    srv = server or Server(config)
    app[SERVER_KEY] = srv

    async def on_startup(app):
        await srv.start()

    async def on_cleanup(app):
        await srv.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/", index)
    app.router.add_get("/rpc", rpc_socket)
    app.router.add_get("/api/health", health)
    app.router.add_post("/blobs", upload)
    app.router.add_get("/blobs/{name}", download)
    app.router.add_get("/{path:.+}", static)
    return app
