"""One case partition's book on the worker's disk: a snapshot of the book, with the case event it
reflects, and the archive of cases that left the book.

A restart (or a partition moving to this worker) loads the snapshot and reads the partition's
case events after it, so its time follows the book's size and not the history's length. The
snapshot names the last case event it reflects by offset *and* event id: when the topic is not
the one the snapshot was taken from (a broker that came back empty, a history put back from the
read model), the record at that offset is another event or none, and the snapshot and its
archive are dropped and the partition is folded from its whole history again.

The archive keeps every case that left the book (`CaseBook.retire`), so that a command, a
duplicate report or a merge that names one brings it back (`CaseBook.case`). It lives in the
same file as the snapshot: the two are valid together or not at all.

A snapshot is written while the worker goes on deciding: the worker hands `save` a copy of the
book (`CaseBook.copy`, a copy of its indexes) taken between two batches, and `save` pickles it in
short slices between the decisions. A book pickled whole, under the lock that keeps decisions
out, stopped every decision for as long as the pickling took (0.7 s at 20,000 open cases), once
a snapshot interval.

Both hold pickled objects: the file is the worker's own, written and read only by it, in its
data directory (0700), never taken from anyone else.
"""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from handlers.book import CaseBook
from handlers.case import CaseState

FORMAT = 2
"""The layout of what is pickled; a snapshot of another format is not read."""

PIECE_ENTRIES = 100
"""Entries of an index pickled at a time (a piece of cases takes about 3 ms)."""

SLICE_S = 0.005
"""How long a snapshot pickles before it lets the event loop's other tasks run."""


@dataclass(frozen=True)
class Snapshot:
    book: CaseBook
    offset: int
    """The offset of the last case event the book reflects, on this partition."""
    event_id: str
    """That event's id: the topic holds it at `offset`, or the snapshot is of another topic."""


class PartitionStore:
    """The snapshot and the archive of one case partition, in one SQLite file."""

    def __init__(self, directory: Path, partition: int) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / f"partition-{partition}.sqlite"
        # used from the event loop's thread and from the executor that loads and saves
        self._lock = threading.Lock()
        self._closed = False
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS snapshot (one INTEGER PRIMARY KEY CHECK (one = 1),"
            " format INTEGER, offset INTEGER, event_id TEXT, book BLOB)"
        )
        # the book's large indexes, in pieces (`CaseBook.pieces`); `snapshot.book` holds the rest
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS snapshot_piece (seq INTEGER PRIMARY KEY, name TEXT,"
            " piece BLOB)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS archive (case_id TEXT PRIMARY KEY, state BLOB)"
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    # --- the snapshot ------------------------------------------------------------------------

    def load(self) -> Snapshot | None:
        with self._lock:
            row = self._db.execute("SELECT format, offset, event_id, book FROM snapshot").fetchone()
            if row is None or row[0] != FORMAT:
                return None
            pieces = self._db.execute("SELECT name, piece FROM snapshot_piece ORDER BY seq")
            # the worker's own file (see the module)
            book = CaseBook.from_pieces(
                [
                    *((name, pickle.loads(piece)) for name, piece in pieces),  # noqa: S301
                    ("", pickle.loads(row[3])),  # noqa: S301
                ]
            )
        return Snapshot(book, row[1], row[2])

    async def save(self, book: CaseBook, offset: int, event_id: str) -> int:
        """Replace the snapshot; returns its size in bytes (0 if the store was closed
        meanwhile: the partition moved away). `book` must not change while this runs: the
        worker hands it a `CaseBook.copy`.

        The book is pickled on the event loop, a slice of `SLICE_S` at a time, and the loop's
        other tasks (the decisions) run between slices; only the write goes to a thread.
        Pickling from a thread instead held the interpreter against the loop: each time the
        loop woke it waited for the pickling thread's switch interval, and the decisions fell
        behind by hundreds of milliseconds (`bench/bench_snapshot.py`)."""
        pieces: list[tuple[int, str, bytes]] = []
        whole = b""
        sliced = time.perf_counter()
        for name, piece in book.pieces(PIECE_ENTRIES):
            blob = pickle.dumps(piece, protocol=pickle.HIGHEST_PROTOCOL)
            if name:
                pieces.append((len(pieces), name, blob))
            else:
                whole = blob
            if time.perf_counter() - sliced >= SLICE_S:
                await asyncio.sleep(0)
                sliced = time.perf_counter()
        return await asyncio.to_thread(self._write, pieces, whole, offset, event_id)

    def _write(
        self, pieces: list[tuple[int, str, bytes]], whole: bytes, offset: int, event_id: str
    ) -> int:
        with self._lock:
            if self._closed:
                return 0
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM snapshot_piece")
            self._db.executemany("INSERT INTO snapshot_piece VALUES (?, ?, ?)", pieces)
            self._db.execute(
                "INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?, ?, ?)",
                (FORMAT, offset, event_id, whole),
            )
            self._db.execute("COMMIT")
        return len(whole) + sum(len(blob) for _, _, blob in pieces)

    def discard(self) -> None:
        """Forget the snapshot and the archive: they belong to a topic that is gone."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM snapshot")
            self._db.execute("DELETE FROM snapshot_piece")
            self._db.execute("DELETE FROM archive")
            self._db.execute("COMMIT")

    # --- the archive (handlers.book.Archive) -------------------------------------------------

    def keep(self, states: list[CaseState]) -> None:
        rows = [
            (state.case_id, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
            for state in states
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO archive VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def fetch(self, case_id: str) -> CaseState | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM archive WHERE case_id = ?", (case_id,)
            ).fetchone()
        return pickle.loads(row[0]) if row else None  # noqa: S301 - the worker's own file

    def archived(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM archive").fetchone()[0])
