"""Jobs as rows of the store's SQLite database (design §15: "the job record is the truth").

A job is one script run on behalf of a user (``owner``), queued in FIFO order (``seq``), claimed by one
runner at a time (``queued`` → ``running`` is a single UPDATE guarded by the old status, so a job is never
run twice and a cancelled queued job never starts), and finished exactly once. After a crash,
:meth:`Jobs.recover` turns the rows that were ``running`` into ``interrupted``; ``queued`` rows stay queued
and run again. Uploaded and produced files (``files``) are recorded with their owner, so one user never
reads another's.

>>> jobs = Jobs(store)                                         # doctest: +SKIP
>>> rec = jobs.create("alice", "tab-1", {"script": "(+ 1 2)"})  # doctest: +SKIP
>>> jobs.claim_next()["job"] == rec["job"]                     # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from itertools import islice
from typing import Any

STATUSES = ("queued", "running", "done", "error", "cancelled", "interrupted")
FINISHED = ("done", "error", "cancelled", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    client_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued','running','done','error','cancelled','interrupted')),
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    request TEXT NOT NULL CHECK (json_valid(request)),
    result TEXT CHECK (result IS NULL OR json_valid(result)),
    error TEXT CHECK (error IS NULL OR json_valid(error)),
    images TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(images)),
    idempotency_key TEXT,
    UNIQUE (owner, idempotency_key)
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, seq);
CREATE INDEX IF NOT EXISTS jobs_client ON jobs(owner, client_id, status);
CREATE TABLE IF NOT EXISTS files (
    hash TEXT NOT NULL,
    owner TEXT NOT NULL,
    ext TEXT NOT NULL,
    size INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    created REAL NOT NULL,
    PRIMARY KEY (hash, owner)
);
"""


class Jobs:
    """The job tables in the database file of one :class:`viwoscript.store.Store`.

    They have a connection of their own with ``synchronous=NORMAL`` (WAL): every change is one atomic
    transaction that survives the server process being killed at any moment; only a power loss may forget
    the last few milliseconds of job changes (never half of one). The store's own tables keep ``FULL``.

    The queue is mirrored in memory (the queued jobs in FIFO order and their count per client), so
    claiming the next job, the per-client queue limit and the records returned need no reads. The
    mirror is loaded when the tables open and changed only after the transaction that changes the rows
    commits: one process serves a data folder (a second one on the same folder never runs a job twice,
    but does not see the other's new jobs until it restarts). :meth:`create_many` writes many new jobs
    in one transaction (the server's group commit).
    """

    def __init__(self, store):
        path = next(row[2] for row in store.db.execute("PRAGMA database_list") if row[1] == "main")
        self.store = _Connection(path)
        #: job id -> (seq, owner, client_id, created, request) of the queued jobs, oldest first
        self._queue: OrderedDict[str, tuple] = OrderedDict()
        #: (owner, client_id) -> queued jobs
        self._per_client: Counter = Counter()
        #: job id -> seq of the jobs this process claimed and has not finished
        self._running: dict[str, int] = {}
        with self.store._lock:
            self.store.db.executescript(SCHEMA)
            self._load_queue()

    def _load_queue(self) -> None:
        self._queue.clear()
        self._per_client.clear()
        for row in self.store.db.execute("SELECT seq, id, owner, client_id, created, request FROM jobs "
                                         "WHERE status = 'queued' ORDER BY seq"):
            self._queue[row["id"]] = (row["seq"], row["owner"], row["client_id"], row["created"],
                                      json.loads(row["request"]))
            self._per_client[(row["owner"], row["client_id"])] += 1

    def close(self) -> None:
        self.store.close()

    # --- writing ------------------------------------------------------------------------------------
    def create(self, owner: str, client_id: str | None, request: dict, *, idempotency_key: str | None = None,
               max_queued: int | None = None) -> tuple[dict, bool]:
        """A new queued job (or the existing one with the same idempotency key); ``(record, created)``.

        Raises :class:`QueueFull` when the client already has ``max_queued`` queued jobs.
        """
        (out,) = self.create_many([(owner, client_id, request, idempotency_key)], max_queued=max_queued)
        if isinstance(out, BaseException):
            raise out
        return out

    def create_many(self, items: list[tuple], *, max_queued: int | None = None) -> list:
        """Several :meth:`create` calls in one transaction. ``items`` are ``(owner, client_id, request,
        idempotency_key)``; the answer has, for each, ``(record, created)`` or the :class:`QueueFull`
        it raised (the others are created all the same). A failing transaction raises for all."""
        out: list = []
        added: list[tuple] = []
        positions: dict[str, int] = {}
        counts = self._per_client
        extra: Counter = Counter()
        with self.store._lock, self.store._tx() as db:
            for owner, client_id, request, key in items:
                if key is not None:
                    row = db.execute("SELECT * FROM jobs WHERE owner = ? AND idempotency_key = ?",
                                     (owner, key)).fetchone()
                    if row is not None:
                        out.append((record(row), False))
                        continue
                if max_queued is not None and counts[(owner, client_id)] + extra[(owner, client_id)] >= max_queued:
                    out.append(QueueFull(max_queued))
                    continue
                jid = secrets.token_hex(16)  # 32 hex digits, like the uuid4 ids before
                created = time.time()
                seq = db.execute("INSERT INTO jobs(id, owner, client_id, status, created, request, idempotency_key) "
                                 "VALUES (?,?,?,'queued',?,?,?)",
                                 (jid, owner, client_id, created, json.dumps(request), key)).lastrowid
                extra[(owner, client_id)] += 1
                added.append((jid, (seq, owner, client_id, created, request)))
                out.append(({"job": jid, "status": "queued", "created": created, "images": []}, True))
            db.execute("COMMIT")  # before the mirror changes (the lock is still held)
            for jid, entry in added:  # committed: now claimable
                self._queue[jid] = entry
                counts[(entry[1], entry[2])] += 1
                positions[jid] = len(self._queue)
            for o in out:  # new jobs: where they stand; existing ones (idempotency key) if still queued
                if isinstance(o, tuple) and o[0]["status"] == "queued":
                    o[0]["queue_position"] = positions.get(o[0]["job"]) or self.queue_position(o[0]["job"])
        return out

    def claim_next(self) -> dict | None:
        """The oldest queued job, now ``running`` (None when the queue is empty)."""
        with self.store._lock:
            return self._claimed(self._claim(self.store.db))

    def _claim(self, db) -> tuple | None:
        """Mark the oldest queued job ``running`` (one statement: in the caller's transaction, or a
        transaction of its own); ``(id, entry, started)`` or None. The caller holds the lock and, once
        the change has committed, updates the mirror with :meth:`_claimed`."""
        stale = []
        try:
            for jid, entry in self._queue.items():
                started = time.time()
                if db.execute("UPDATE jobs SET status = 'running', started = ? WHERE seq = ? AND status = 'queued'",
                              (started, entry[0])).rowcount:
                    return jid, entry, started
                stale.append(jid)  # no longer queued in the table (another process took it)
            return None
        finally:
            for jid in stale:
                self._drop_queued(jid)

    def _claimed(self, claimed: tuple | None) -> dict | None:
        if claimed is None:
            return None
        jid, (seq, owner, client_id, created, request), started = claimed
        self._drop_queued(jid)
        self._running[jid] = seq
        return {"job": jid, "status": "running", "created": created, "started": started, "images": [],
                "owner": owner, "client_id": client_id, "request": request}

    def _drop_queued(self, jid: str) -> None:
        entry = self._queue.pop(jid, None)
        if entry is not None:
            key = (entry[1], entry[2])
            self._per_client[key] -= 1
            if self._per_client[key] <= 0:
                del self._per_client[key]

    def finish(self, job: str | dict, status: str, *, result: Any = None, error: dict | None = None,
               images: list | None = None, claim_next: bool = False):
        """Record how a running job ended; a job already finished (e.g. cancelled) is left as it is.

        ``job`` is its id or the record :meth:`claim_next` returned (then the answer needs no read).
        Returns its record (with ``owner`` and ``client_id``); with ``claim_next``, ``(record, next)`` where
        ``next`` is the next job claimed in the same transaction (or None).
        """
        if status not in FINISHED:
            raise ValueError(f"Jobs.finish: status must be one of {FINISHED}, not {status!r}")
        job_id = job["job"] if isinstance(job, dict) else job
        images = images or []
        values = (json.dumps(result), json.dumps(error) if error else None, json.dumps(images))
        with self.store._lock:
            seq = self._running.pop(job_id, None)
            nxt = next(iter(self._queue.items()), None) if claim_next else None
            finished = time.time()
            if isinstance(job, dict) and seq is not None:
                done, got = self._finish_fast(seq, status, finished, values, nxt)
                if nxt is not None and not got:  # not queued in the table after all (another process)
                    self._drop_queued(nxt[0])
                claimed = (nxt[0], nxt[1], finished) if got else None
                if claimed is None and claim_next:
                    claimed = self._claim(self.store.db)
                if done:
                    rec = {"job": job_id, "status": status, "created": job["created"], "finished": finished}
                    if job.get("started") is not None:
                        rec["started"] = job["started"]
                    if status == "done":
                        rec["result"] = result
                    if error:
                        rec["error"] = error
                    rec["images"] = images
                    rec["owner"] = job["owner"]
                    rec["client_id"] = job["client_id"]
                else:  # finished elsewhere: the row says how
                    rec = _owned(self.store.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
                return (rec, self._claimed(claimed)) if claim_next else rec
            with self.store._tx() as db:  # the general way: by id, reading the row back
                changed = db.execute("UPDATE jobs SET status = ?, finished = ?, result = ?, error = ?, images = ? "
                                     "WHERE id = ? AND status IN ('queued', 'running')",
                                     (status, finished, *values, job_id)).rowcount
                row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
                claimed = self._claim(db) if claim_next else None
                db.execute("COMMIT")
                if changed:
                    self._drop_queued(job_id)
                nxt = self._claimed(claimed)
        rec = _owned(row) if row is not None else None
        return (rec, nxt) if claim_next else rec

    def _finish_fast(self, seq: int, status: str, now: float, values: tuple, nxt: tuple | None) -> tuple[bool, bool]:
        """Finish the running job ``seq`` and start ``nxt`` (the oldest queued job, or None) in one statement
        (one transaction, one call into SQLite). ``(finished, started)``: whether each row changed, which
        is both unless the table moved behind the mirror's back (then the rows tell which)."""
        db = self.store.db
        if nxt is None:
            n = db.execute("UPDATE jobs SET status = ?, finished = ?, result = ?, error = ?, images = ? "
                           "WHERE seq = ? AND status = 'running'", (status, now, *values, seq)).rowcount
            return n == 1, False
        nseq = nxt[1][0]
        if db.execute(_FINISH_AND_CLAIM, (seq, status, now, *values, nseq)).rowcount == 2:
            return True, True
        rows = {r["seq"]: r for r in db.execute("SELECT seq, status, started, finished FROM jobs WHERE seq IN (?, ?)",
                                                (seq, nseq))}
        done, started = rows.get(seq), rows.get(nseq)
        return (done is not None and done["status"] == status and done["finished"] == now,
                started is not None and started["status"] == "running" and started["started"] == now)

    def cancel(self, job_id: str, owner: str) -> tuple[dict | None, str | None]:
        """Cancel a job of ``owner``: ``(record, previous status)``; a queued one is finished at once
        (it never starts), a running one keeps ``running`` until its runner stops it. ``(None, None)`` when
        the owner has no such job."""
        with self.store._lock, self.store._tx() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)).fetchone()
            if row is None:
                return None, None
            before = row["status"]
            if before == "queued":
                db.execute("UPDATE jobs SET status = 'cancelled', finished = ? WHERE id = ? AND status = 'queued'",
                           (time.time(), job_id))
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            db.execute("COMMIT")
            if before == "queued":
                self._drop_queued(job_id)
        return record(row), before

    def recover(self) -> list[dict]:
        """After a restart: jobs left ``running`` become ``interrupted``; returns them."""
        with self.store._tx() as db:
            rows = db.execute("SELECT id FROM jobs WHERE status = 'running'").fetchall()
            db.execute("UPDATE jobs SET status = 'interrupted', finished = ?, error = ? WHERE status = 'running'",
                       (time.time(), json.dumps({"type": "Interrupted", "message": "the server stopped while "
                                                 "this job was running", "line": None, "col": None,
                                                 "hint": "submit it again", "path": None})))
        return [self.get(r["id"]) for r in rows]

    # --- reading ------------------------------------------------------------------------------------
    def get(self, job_id: str, owner: str | None = None, *, full: bool = False) -> dict | None:
        """The record of a job (only if it belongs to ``owner``, when given)."""
        with self.store._lock:
            if owner is None:
                row = self.store.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            else:
                row = self.store.db.execute("SELECT * FROM jobs WHERE id = ? AND owner = ?",
                                            (job_id, owner)).fetchone()
        return record(row, full=full) if row else None

    def list(self, owner: str, *, client_id: str | None = None, status: str | None = None,
             limit: int = 100) -> list[dict]:
        """A user's jobs, newest first."""
        sql, params = "SELECT * FROM jobs WHERE owner = ?", [owner]
        if client_id is not None:
            sql += " AND client_id = ?"
            params.append(client_id)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(int(limit))
        with self.store._lock:
            return [record(r) for r in self.store.db.execute(sql, params).fetchall()]

    def unfinished(self, owner: str, client_id: str) -> list[dict]:
        """A client's queued and running jobs, oldest first (resent when it reconnects)."""
        with self.store._lock:
            rows = self.store.db.execute(
                "SELECT * FROM jobs WHERE owner = ? AND client_id = ? AND status IN ('queued', 'running') "
                "ORDER BY seq", (owner, client_id)).fetchall()
        return [record(r) for r in rows]

    def queue_position(self, job_id: str) -> int | None:
        """Where a queued job stands in the server's queue (1: it starts next); None when not queued."""
        with self.store._lock:
            for i, jid in enumerate(self._queue, 1):
                if jid == job_id:
                    return i
        return None

    def is_queued(self, job_id: str) -> bool:
        return job_id in self._queue

    def queued_head(self, limit: int) -> list[dict]:
        """The first ``limit`` queued jobs: ``{job, owner, client_id, queue_position}``, next first."""
        with self.store._lock:
            return [{"job": jid, "owner": entry[1], "client_id": entry[2], "queue_position": i}
                    for i, (jid, entry) in enumerate(islice(self._queue.items(), max(0, int(limit))), 1)]

    def queued_count(self) -> int:
        with self.store._lock:
            return len(self._queue)

    # --- files ----------------------------------------------------------------------------------------
    def add_file(self, digest: str, owner: str, ext: str, size: int, width: int | None, height: int | None) -> None:
        with self.store._tx() as db:
            db.execute("INSERT OR IGNORE INTO files(hash, owner, ext, size, width, height, created) "
                       "VALUES (?,?,?,?,?,?,?)", (digest, owner, ext, size, width, height, time.time()))

    def file(self, digest: str, owner: str) -> dict | None:
        with self.store._lock:
            row = self.store.db.execute("SELECT * FROM files WHERE hash = ? AND owner = ?", (digest, owner)).fetchone()
        return dict(row) if row else None


#: Finish job ?1 (status ?2, time ?3, result ?4, error ?5, images ?6) and start job ?7: one statement.
_FINISH_AND_CLAIM = (
    "UPDATE jobs SET status = CASE seq WHEN ?1 THEN ?2 ELSE 'running' END, "
    "finished = CASE seq WHEN ?1 THEN ?3 ELSE finished END, started = CASE seq WHEN ?1 THEN started ELSE ?3 END, "
    "result = CASE seq WHEN ?1 THEN ?4 ELSE result END, error = CASE seq WHEN ?1 THEN ?5 ELSE error END, "
    "images = CASE seq WHEN ?1 THEN ?6 ELSE images END "
    "WHERE (seq = ?1 AND status = 'running') OR (seq = ?7 AND status = 'queued')")


class _Connection:
    """One SQLite connection with a lock and ``_tx()`` transactions (as :class:`~viwoscript.store.Store`)."""

    def __init__(self, path: str):
        self._lock = threading.RLock()
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _tx(self):
        conn = self

        class _Tx:
            def __enter__(self):
                conn._lock.acquire()
                try:
                    conn.db.execute("BEGIN IMMEDIATE")
                except BaseException:
                    conn._lock.release()
                    raise
                return conn.db

            def __exit__(self, exc_type, exc, tb):
                try:
                    if conn.db.in_transaction:  # (a caller may have committed already)
                        conn.db.execute("ROLLBACK" if exc_type else "COMMIT")
                finally:
                    conn._lock.release()
                return False

        return _Tx()


class QueueFull(Exception):
    def __init__(self, limit: int):
        super().__init__(f"this client already has {limit} queued jobs")
        self.limit = limit


def _owned(row: sqlite3.Row) -> dict:
    rec = record(row)
    rec["owner"] = row["owner"]
    rec["client_id"] = row["client_id"]
    return rec


def record(row: sqlite3.Row, *, full: bool = False) -> dict:
    """The job record of design §15 (``full`` adds the private fields a runner needs)."""
    rec: dict[str, Any] = {"job": row["id"], "status": row["status"], "created": row["created"]}
    if row["started"] is not None:
        rec["started"] = row["started"]
    if row["finished"] is not None:
        rec["finished"] = row["finished"]
    if row["status"] == "done":
        rec["result"] = json.loads(row["result"]) if row["result"] is not None else None
    if row["error"] is not None:
        rec["error"] = json.loads(row["error"])
    rec["images"] = json.loads(row["images"])
    if full:
        rec["owner"] = row["owner"]
        rec["client_id"] = row["client_id"]
        rec["request"] = json.loads(row["request"])
    return rec
