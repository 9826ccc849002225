"""``viwo serve``: the runtime as a server — JSON-RPC 2.0 over a WebSocket, jobs, files, auth (design §15).

Importing this package is cheap (no aiohttp); :mod:`.app` imports aiohttp and is loaded only by the
``viwo serve`` command (:mod:`.command`) and by programs that embed the server.

Modules, one job each:

- :mod:`.config` — ``[server]`` in viwo.toml plus the flags → :class:`~.config.ServerConfig`
- :mod:`.auth` — tokens (Bearer header, cookie, ``?token=``) and the Origin check, on every route
- :mod:`.rpc` — JSON-RPC framing, error codes, the :class:`~.rpc.MethodRegistry`
- :mod:`.methods` — metadata, check, execute/submit, get/cancel/list jobs, plugin_rpc
- :mod:`.store_methods` — each user's images and templates
- :mod:`.jobs` — the queue (rows in the store, ``viwoscript.store.jobs``), runners per executor slot
- :mod:`.blobs` — uploads and produced images under ``/blobs``
- :mod:`.notify` — owner-only notifications and binary frames
- :mod:`.app` — the aiohttp application and the :class:`~.app.Server` tying them together

Adding RPC methods from another module (e.g. the live canvas sessions): write a module with a
registry and add its name to :data:`METHOD_MODULES` — that one line is the registration::

    # viwoscript/server/canvas_methods.py
    from .methods import Call
    from .rpc import MethodRegistry, Param

    methods = MethodRegistry()

    @methods.method("canvas_open", Param("script", (list, str), None))
    async def canvas_open(call: Call, script):
        ...   # call.user, call.client_id, call.server, call.conn.send(...), call.server.hub.send_binary(...)

    async def setup(server): ...             # optional: when the server starts
    async def cleanup(server): ...           # optional: when it stops
    async def connection_closed(call): ...   # optional: when one of a user's sockets closes

Handlers are coroutines; blocking work goes to a thread (``asyncio.to_thread``) so the socket stays live.
Raise :class:`~.rpc.RpcError` for a JSON-RPC error answer; parameters are checked from the ``Param`` list.
"""

from __future__ import annotations

#: Modules whose ``methods`` registry the server serves (see above).
METHOD_MODULES = (
    "viwoscript.server.methods",
    "viwoscript.server.store_methods",
    "viwoscript.server.canvas_methods",
)
