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
from collections import defaultdict, deque

#: Queued messages per socket beyond which droppable events are skipped.
MAX_BACKLOG = 1000
DROPPABLE = ("job.progress", "job.log")


def encode(message) -> str:
    """The JSON text of a message (compact, UTF-8 as is, no NaN)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


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
    """One WebSocket of one client of one user: messages are sent in order by one writer task.

    Messages queued while the writer waits for its turn go out together: on a socket without
    compression they are framed here and handed to the transport in one write (one system call for a
    job's ``queued``, ``running`` and ``done`` notifications and its reply, when they are ready together);
    with compression (browsers) each goes through aiohttp's writer.
    """

    def __init__(self, ws, user: str, client_id: str, transport=None):
        self.ws = ws
        self.user = user
        self.client_id = client_id
        self.seq = 0
        self.dropped = 0
        self._out: deque = deque()
        self._loop = asyncio.get_running_loop()
        self._wakeup: asyncio.Future | None = None
        self._transport = transport if transport is not None and not ws.compress else None
        self.writer = self._loop.create_task(self._write())

    def send(self, message: dict | str | bytes | None, *, droppable: bool = False) -> None:
        """Queue a message (a dict is JSON-encoded by the writer; None stops the writer)."""
        if droppable and len(self._out) >= MAX_BACKLOG:
            self.dropped += 1
            return
        self._out.append(message)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def _write(self) -> None:
        out = self._out
        try:
            while True:
                if not out:
                    self._wakeup = self._loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                transport = self._transport
                if transport is None or transport.is_closing():
                    if not await self._send_one(out.popleft()):
                        return
                    continue
                frames = []
                stop = False
                while out:
                    msg = out.popleft()
                    if msg is None:
                        stop = True
                        break
                    frame = _frame(msg)
                    if frame is not None:
                        frames.append(frame)
                if frames and not self.ws.closed:
                    transport.write(b"".join(frames))
                if stop:
                    return
                if transport.get_write_buffer_size() > HIGH_WATER:  # a slow reader: wait for it
                    while transport.get_write_buffer_size() > HIGH_WATER // 4 and not transport.is_closing():
                        await asyncio.sleep(0.01)
        except (ConnectionError, RuntimeError):
            return

    async def _send_one(self, msg) -> bool:
        """Send one message through aiohttp's writer; False when told to stop."""
        if msg is None:
            return False
        ws = self.ws
        if ws.closed:
            return True
        if isinstance(msg, bytes):
            await ws.send_bytes(msg)
            return True
        if not isinstance(msg, str):
            try:
                msg = encode(msg)
            except (TypeError, ValueError):  # an event that cannot be JSON: skip it, keep the socket
                return True
        await ws.send_str(msg)
        return True

    async def close(self) -> None:
        self.send(None)
        try:
            await asyncio.wait_for(self.writer, 5)
        except (TimeoutError, asyncio.CancelledError):
            self.writer.cancel()


#: Bytes waiting in a socket's transport beyond which its writer pauses until they drain.
HIGH_WATER = 1 << 20


def _frame(msg) -> bytes | None:
    """An unmasked, uncompressed WebSocket frame (RFC 6455 §5.2): text for str/dict, binary for bytes."""
    if isinstance(msg, bytes):
        opcode, payload = 0x2, msg
    else:
        if not isinstance(msg, str):
            try:
                msg = encode(msg)
            except (TypeError, ValueError):  # an event that cannot be JSON: skip it, keep the socket
                return None
        opcode, payload = 0x1, msg.encode("utf-8")
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


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
        conns = self.connections(user, client_id)
        if not conns:
            return
        try:
            text = encode({"jsonrpc": "2.0", "method": method, "params": params})  # once for every socket
        except (TypeError, ValueError):  # an event that cannot be JSON: nobody gets it
            return
        droppable = method in DROPPABLE
        for conn in conns:
            conn.send(text, droppable=droppable)

    def status(self, user: str, client_id: str | None, job: str, status: str, queue_position: int | None = None,
               ) -> None:
        """``job.status {job, status}`` (``queued`` adds ``queue_position``): the commonest notification,
        its text is built directly."""
        conns = self.connections(user, client_id)
        if not conns:
            return
        if job.isalnum() and status.isalpha() and (queue_position is None or type(queue_position) is int):
            more = "" if status != "queued" else \
                ',"queue_position":' + ("null" if queue_position is None else str(queue_position))
            text = f'{{"jsonrpc":"2.0","method":"job.status","params":{{"job":"{job}","status":"{status}"{more}}}}}'
        elif status == "queued":
            text = encode({"jsonrpc": "2.0", "method": "job.status",
                           "params": {"job": job, "status": status, "queue_position": queue_position}})
        else:
            text = encode({"jsonrpc": "2.0", "method": "job.status", "params": {"job": job, "status": status}})
        for conn in conns:
            conn.send(text)

    def send_binary(self, user: str, client_id: str | None, header: dict, data: bytes) -> None:
        for conn in self.connections(user, client_id):
            conn.send(binary_frame({**header, "seq": conn.next_seq()}, data), droppable=True)

    def __len__(self) -> int:
        return sum(len(cs) for cs in self._by_client.values())
