"""Helpers for the server tests: a served app on 127.0.0.1 and a small JSON-RPC client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path
from typing import Any

from viwoscript.server.config import ServerConfig

TOKEN_A = "alice-token-123"
TOKEN_B = "bob-token-4567"
#: A script that runs until cancelled (or its gas runs out).
FOREVER = "(std.while true null)"


def config(tmp_path: Path, **kw: Any) -> ServerConfig:
    from viwoscript.limits import Limits

    base = dict(tokens={TOKEN_A: "alice", TOKEN_B: "bob"}, explicit_token=True, data=tmp_path / "data",
                roots=[tmp_path], limits=Limits(gas=10**9, timeout=600))
    base.update(kw)
    return ServerConfig(**base)


@contextlib.asynccontextmanager
async def served(sc: ServerConfig):
    """``(TestClient, Server)`` for ``sc`` on a real loopback socket."""
    from aiohttp.test_utils import TestClient, TestServer

    from viwoscript.server.app import SERVER_KEY, make_app

    app = make_app(sc)
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        yield client, app[SERVER_KEY]


class RpcFailure(Exception):
    def __init__(self, error: dict):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error
        self.code = error.get("code")


class Rpc:
    """A JSON-RPC client on one WebSocket: answers by id, notifications and binary frames collected."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending: dict[Any, asyncio.Future] = {}
        self.notes: list[dict] = []
        self.frames: list[bytes] = []
        self.unmatched: list[Any] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, client, token: str = TOKEN_A, client_id: str | None = None) -> Rpc:
        q = f"/rpc?token={token}" + (f"&client_id={client_id}" if client_id else "")
        return cls(await client.ws_connect(q))

    async def _read(self):
        from aiohttp import WSMsgType

        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                self.frames.append(msg.data)
            elif msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                items = data if isinstance(data, list) else [data]
                for item in items:
                    if "method" in item and "id" not in item:
                        self.notes.append(item)
                    elif item.get("id") in self.pending and not self.pending[item["id"]].done():
                        self.pending.pop(item["id"]).set_result(item)
                    else:
                        self.unmatched.append(item)
            self.changed.set()

    async def request(self, method: str, params: Any = None, /, **kw: Any) -> dict:
        self.next_id += 1
        rid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None or kw:
            msg["params"] = params if params is not None else kw
        await self.ws.send_str(json.dumps(msg))
        return await asyncio.wait_for(fut, 120)

    async def call(self, method: str, params: Any = None, /, **kw: Any) -> Any:
        answer = await self.request(method, params, **kw)
        if "error" in answer:
            raise RpcFailure(answer["error"])
        return answer["result"]

    async def raw(self, text: str | bytes) -> Any:
        """Send a frame as it is; the next unmatched answer."""
        n = len(self.unmatched)
        if isinstance(text, bytes):
            await self.ws.send_bytes(text)
        else:
            await self.ws.send_str(text)
        await self.until(lambda: len(self.unmatched) > n)
        return self.unmatched[n]

    async def until(self, cond, timeout: float = 120):
        async def wait():
            while not cond():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def statuses(self, job: str) -> list[str]:
        return [n["params"]["status"] for n in self.notes if n["method"] == "job.status" and n["params"]["job"] == job]

    async def wait_status(self, job: str, status: str):
        await self.until(lambda: status in self.statuses(job))

    async def close(self):
        await self.ws.close()
        await asyncio.gather(self.reader, return_exceptions=True)


def png_bytes(w: int = 8, h: int = 6, color=(255, 0, 0)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def run(coro):
    return asyncio.run(coro)
