"""Who hears what: the open sockets of each user's clients, owner-only notifications, binary frames.

Events of a job go only to the sockets of the user who owns it and, among that user's tabs, to the one
whose ``client_id`` submitted it. Each socket has its own send queue drained by one writer task, so a
slow client never holds up the others; when its queue is full, progress and log events for it are dropped
(status changes and replies never are: the job record is the truth, a client can always ask for it).

Binary frames (previews, canvas tiles): 4-byte big-endian length of a JSON header, the header
(``{kind, seq, mime, ...}``), then the bytes.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections import defaultdict

#: Queued messages per socket beyond which droppable events are skipped.
MAX_BACKLOG = 1000
DROPPABLE = ("job.progress", "job.log")


def binary_frame(header: dict, data: bytes) -> bytes:
    """``len(header) (4 bytes, big-endian) + header JSON + data``."""
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return struct.pack(">I", len(head)) + head + data


def parse_binary_frame(frame: bytes) -> tuple[dict, bytes]:
    """The inverse of :func:`binary_frame` (clients and tests)."""
    if len(frame) < 4:
        raise ValueError("binary frame shorter than its 4-byte header length")
    (n,) = struct.unpack(">I", frame[:4])
    if n > len(frame) - 4:
        raise ValueError("binary frame header length exceeds the frame")
    return json.loads(frame[4:4 + n].decode("utf-8")), frame[4 + n:]


class Connection:
    """One WebSocket of one client of one user."""

    def __init__(self, ws, user: str, client_id: str):
        self.ws = ws
        self.user = user
        self.client_id = client_id
        self.queue: asyncio.Queue = asyncio.Queue()
        self.seq = 0
        self.dropped = 0
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, message: dict | str | bytes, *, droppable: bool = False) -> None:
        if droppable and self.queue.qsize() >= MAX_BACKLOG:
            self.dropped += 1
            return
        self.queue.put_nowait(message)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def _write(self) -> None:
        ws = self.ws
        try:
            while True:
                msg = await self.queue.get()
                if msg is None:
                    return
                if ws.closed:
                    continue
                if isinstance(msg, bytes):
                    await ws.send_bytes(msg)
                    continue
                if not isinstance(msg, str):
                    try:
                        msg = json.dumps(msg, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
                    except (TypeError, ValueError):  # an event that cannot be JSON: skip it, keep the socket
                        continue
                await ws.send_str(msg)
        except (ConnectionError, RuntimeError):
            return

    async def close(self) -> None:
        self.queue.put_nowait(None)
        try:
            await asyncio.wait_for(self.writer, 5)
        except (TimeoutError, asyncio.CancelledError):
            self.writer.cancel()


class Hub:
    """The open connections, by user and client id."""

    def __init__(self):
        self._by_client: dict[tuple[str, str], set[Connection]] = defaultdict(set)

    def add(self, conn: Connection) -> None:
        self._by_client[(conn.user, conn.client_id)].add(conn)

    def remove(self, conn: Connection) -> None:
        key = (conn.user, conn.client_id)
        conns = self._by_client.get(key)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._by_client[key]

    def connections(self, user: str, client_id: str | None) -> list[Connection]:
        if client_id is not None:
            return list(self._by_client.get((user, client_id), ()))
        return [c for (u, _), cs in self._by_client.items() if u == user for c in cs]

    def notify(self, user: str, client_id: str | None, method: str, params: dict) -> None:
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        droppable = method in DROPPABLE
        for conn in self.connections(user, client_id):
            conn.send(msg, droppable=droppable)

    def send_binary(self, user: str, client_id: str | None, header: dict, data: bytes) -> None:
        for conn in self.connections(user, client_id):
            conn.send(binary_frame({**header, "seq": conn.next_seq()}, data), droppable=True)

    def __len__(self) -> int:
        return sum(len(cs) for cs in self._by_client.values())
