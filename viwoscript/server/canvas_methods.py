"""RPC methods of the live canvas sessions (Layer Mode; design §15 "Live canvas sessions").

A page opens a session (``canvas_open``) and then sends the statements its user's actions record
(``canvas_apply``), ``canvas_undo``/``canvas_redo``, or a whole edited script (``canvas_replace``). Each
call answers with the layer list and version (:meth:`~.canvas_session.Update.to_json`) and, on the calling
socket and before that answer, a ``canvas.update`` notification (the same fields plus ``session``, so a
page can clear rebuilt layers first) followed by one binary frame per changed tile
(``{kind: "tile", seq, mime: "application/x-viwo-rgba", session, layer, x, y, w, h}`` + RGBA bytes).

Sessions belong to the user who opened them, live in memory (a restarted server has none: the page sends
its script back with ``canvas_open``), and run apart from the job queue on their own threads, so a stroke
never waits behind a generation. The engine is :mod:`.canvas_session`; this module is transport only.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ViwoError
from .canvas_session import MAX_STATEMENTS, CanvasSession, Update
from .methods import Call
from .notify import binary_frame
from .rpc import INVALID_PARAMS, NOT_FOUND, SCRIPT_ERROR, MethodRegistry, Param, RpcError

if TYPE_CHECKING:
    from .app import Server

methods = MethodRegistry()

#: Sessions one user may hold; opening one more closes the least recently used.
MAX_SESSIONS_PER_USER = 8
#: Sessions unused this long are closed when any new one opens.
IDLE_S = 3600.0
#: Pixel memory one session's layers may use (its snapshots and undo patches have their own bounds).
MAX_SESSION_BYTES = 512 * 1024 * 1024
#: Sides a new canvas may have.
MIN_SIDE, MAX_SIDE = 8, 4096

SESSION = Param("session", str, doc="the id canvas_open returned")
STATEMENTS = Param("statements", list, doc="statements to append, JSON form")
STEPS = Param("steps", int, 1, doc="how many statements")
SCRIPT = Param("script", (str, list), doc="the whole script: text form (a string) or JSON form")


@dataclass
class _Entry:
    user: str
    session: CanvasSession
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    used: float = field(default_factory=time.monotonic)


class CanvasSessions:
    """The server's open canvas sessions, by id (at most ``MAX_SESSIONS_PER_USER`` per user)."""

    def __init__(self, server: Server):
        self.server = server
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, call: Call, session_id: str) -> _Entry:
        entry = self.entries.get(session_id)
        if entry is None or entry.user != call.user:
            raise RpcError(NOT_FOUND, f"no canvas session {session_id[:80]!r}",
                           {"hint": "open one with canvas_open (sessions end when the server restarts)"})
        entry.used = time.monotonic()
        self.entries.move_to_end(session_id)
        return entry

    def create(self, call: Call, width: int, height: int) -> tuple[str, _Entry]:
        from ..runtime import Runtime

        server = self.server
        config = server.config
        rt = Runtime(canvas_size=(width, height), limits=config.limits, plugins=False, runner=config.runner)
        rt.canvas.max_bytes = min(rt.canvas.max_bytes, MAX_SESSION_BYTES)
        user = call.user
        now = time.monotonic()
        for old in [k for k, e in self.entries.items() if now - e.used > IDLE_S]:
            del self.entries[old]

        def load_blob(digest: str) -> bytes:
            return server.resolve_blob(user, digest, "canvas.layer.load_image").read_bytes()

        sid = secrets.token_urlsafe(12)
        entry = _Entry(user, CanvasSession(rt, load_blob=load_blob))
        self.entries[sid] = entry
        mine = [k for k, e in self.entries.items() if e.user == user]
        for old in mine[:-MAX_SESSIONS_PER_USER]:
            del self.entries[old]
        return sid, entry


def _sessions(call: Call) -> CanvasSessions:
    sessions = getattr(call.server, "canvas_sessions", None)
    if sessions is None:
        sessions = call.server.canvas_sessions = CanvasSessions(call.server)
    return sessions


async def setup(server: Server) -> None:
    server.canvas_sessions = CanvasSessions(server)


async def cleanup(server: Server) -> None:
    server.canvas_sessions = CanvasSessions(server)


def _send(call: Call, sid: str, update: Update) -> dict:
    """The notification and the tile frames on the calling socket (before the answer); the answer."""
    body = update.to_json()
    conn = call.conn
    if conn is not None:
        conn.send({"jsonrpc": "2.0", "method": "canvas.update", "params": {"session": sid, **body}})
        for tile in update.tiles:
            conn.send(binary_frame(tile.header(sid, conn.next_seq()), tile.data))
    return body


async def _run(entry: _Entry, fn, *args, inline: bool = False):
    """``fn(*args)`` under the session's lock: on a thread, or right here when ``inline`` (a stroke or an
    undo of one costs about a millisecond; two thread hops would cost more than that on a busy machine)."""
    async with entry.lock:
        try:
            if inline:
                return fn(*args)
            return await asyncio.to_thread(fn, *args)
        except ViwoError as e:
            raise RpcError(SCRIPT_ERROR, e.message, {"type": type(e).__name__, "message": e.message,
                                                     "hint": e.hint}) from None


def _statements(rt, script: Any) -> list:
    """A script (text or JSON form) as its list of top-level statements (JSON form)."""
    from ..nodes import to_data

    data = to_data(rt.parse(script)) if isinstance(script, str) else script
    if isinstance(data, list) and data and data[0] == "std.seq":
        return list(data[1:])
    if isinstance(data, list) and not data:
        return []
    return [data]


def _side(name: str, v: Any) -> int:
    if type(v) is not int or not MIN_SIDE <= v <= MAX_SIDE:
        raise RpcError(INVALID_PARAMS, f"canvas_open: {name} must be a whole number from {MIN_SIDE} to {MAX_SIDE}")
    return v


@methods.method("canvas_open", Param("session", (str, type(None)), None),
                Param("script", (str, list, type(None)), None), Param("width", (int, type(None)), None),
                Param("height", (int, type(None)), None))
async def canvas_open(call: Call, session: Any, script: Any, width: Any, height: Any) -> dict:
    """Open a canvas session, or re-attach to ``session`` if this user still has it. A new session starts
    from ``script`` when given (a page re-sending its script after a server restart). Answers with the
    session id, the script (JSON form) and the layers; every non-empty tile follows as binary frames."""
    sessions = _sessions(call)
    entry = None
    if session is not None:
        entry = sessions.entries.get(session)
        if entry is not None and entry.user != call.user:
            entry = None
    if entry is None:
        w, h = call.server.config.canvas_size
        session, entry = sessions.create(call, _side("width", width if width is not None else w),
                                         _side("height", height if height is not None else h))
        if script is not None:
            await _run(entry, lambda: entry.session.replace(_statements(entry.session.runtime, script)))
    else:
        sessions.get(call, session)
    update = await _run(entry, entry.session.state)
    body = _send(call, session, update)
    return {"session": session, "script": entry.session.script(), **body}


@methods.method("canvas_apply", SESSION, STATEMENTS)
async def canvas_apply(call: Call, session: str, statements: list) -> dict:
    """Append statements and apply them incrementally (a stroke costs a stroke). A statement that fails
    is refused (error -32000 with its message and hint) and leaves no trace."""
    entry = _sessions(call).get(call, session)
    if len(statements) > MAX_STATEMENTS:
        raise RpcError(INVALID_PARAMS, f"canvas_apply: at most {MAX_STATEMENTS} statements at once")
    cheap = entry.session.cheap(statements)
    return _send(call, session, await _run(entry, entry.session.apply, statements, inline=cheap))


@methods.method("canvas_undo", SESSION, STEPS)
async def canvas_undo(call: Call, session: str, steps: int) -> dict:
    """Drop the last ``steps`` statements (redo brings them back); replays from the nearest snapshot."""
    entry = _sessions(call).get(call, session)
    cheap = entry.session.cheap(undo=steps)
    return _send(call, session, await _run(entry, entry.session.undo, steps, inline=cheap))


@methods.method("canvas_redo", SESSION, STEPS)
async def canvas_redo(call: Call, session: str, steps: int) -> dict:
    """Apply undone statements again."""
    entry = _sessions(call).get(call, session)
    return _send(call, session, await _run(entry, entry.session.redo, steps))


@methods.method("canvas_replace", SESSION, SCRIPT)
async def canvas_replace(call: Call, session: str, script: Any) -> dict:
    """Replace the whole script (the script panel was edited; a template was loaded). Statements that are
    not canvas work, or that fail, become locked placeholder layers keeping the statement. Answers with the
    script (JSON form) too."""
    entry = _sessions(call).get(call, session)
    s = entry.session
    update = await _run(entry, lambda: s.replace(_statements(s.runtime, script)))
    return {"script": s.script(), **_send(call, session, update)}


@methods.method("canvas_script", SESSION)
async def canvas_script(call: Call, session: str) -> dict:
    """The session's script: ``{script: JSON form, text: text form, version}``."""
    from ..syntax import from_python, to_text

    entry = _sessions(call).get(call, session)
    s = entry.session
    script = s.script()
    return {"script": script, "text": to_text(from_python(script), slots=s.runtime.registry.slot_kind),
            "version": s.version}


@methods.method("canvas_export", SESSION, Param("layer", (str, type(None)), None))
async def canvas_export(call: Call, session: str, layer: Any) -> dict:
    """The composite (or one ``layer``) as a PNG under /blobs carrying the script in its metadata:
    ``{sha256, url, width, height}``."""
    from ..io.codec import encode_image

    entry = _sessions(call).get(call, session)
    s = entry.session

    def export():
        with s.lock:
            image = s.stack.layer_image(layer) if layer is not None else s.stack.composite()
            script = s.script()
        data = encode_image(image, "PNG", script=script)
        return call.server.blobs.put(call.user, data, "png", s.stack.width, s.stack.height)

    return await _run(entry, export)


@methods.method("canvas_image_info", Param("sha256", str))
async def canvas_image_info(call: Call, sha256: str) -> dict:
    """What an uploaded image says about how it was made (viwo, A1111, ComfyUI, InvokeAI metadata):
    ``{source, parameters: {prompt, negative_prompt, seed, steps, guidance_scale, ...}, script}``."""
    from ..io.metadata import read_metadata

    found = call.server.blobs.find(call.user, sha256)
    if found is None:
        raise RpcError(NOT_FOUND, f"no upload {sha256[:80]!r}")
    info = await asyncio.to_thread(read_metadata, found[0])
    names = {"prompt": "prompt", "negative_prompt": "negative_prompt", "seed": "seed", "steps": "steps",
             "cfg_scale": "guidance_scale", "sampler": "sampler", "scheduler": "scheduler", "model": "model",
             "size": "size"}
    params = {out: info[key] for key, out in names.items() if info.get(key) is not None}
    return {"source": info.get("source"), "sources": info.get("sources", []), "parameters": params,
            "script": info.get("script"), "width": info.get("width"), "height": info.get("height")}


@methods.method("canvas_preprocessors")
async def canvas_preprocessors(call: Call) -> dict:
    """What a control layer's *preprocess* can do here: ``{capability, granted, types: [{type, available,
    reason, weights}]}`` — each ``controlnet.generate`` preprocessor with whether it can run for this server's
    jobs (granted, packages installed, Annotators weights configured where it needs them) and why not."""
    cap = "controlnet.generate"

    def ask() -> dict:
        caps = call.server.check_runtime().caps
        granted = any(row["type"] == cap and row["granted"] for row in caps.status())
        entry = caps.registry.real.get(cap)
        rows = entry.cls.preprocessors() if entry is not None and hasattr(entry.cls, "preprocessors") else []
        if not granted:
            why = f"this server does not grant {cap} (the host adds it to [server] grants)"
            rows = [{**r, "available": False, "reason": why} for r in rows]
        return {"capability": cap, "granted": granted, "types": rows}

    return await call.server.run_check(ask)


@methods.method("canvas_close", SESSION)
async def canvas_close(call: Call, session: str) -> dict:
    """Forget a session (its pixels are freed)."""
    sessions = _sessions(call)
    sessions.get(call, session)
    del sessions.entries[session]
    return {"closed": session}
