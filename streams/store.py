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

Both hold pickled objects: the file is the worker's own, written and read only by it, in its
data directory (0700), never taken from anyone else.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from handlers.book import CaseBook
from handlers.case import CaseState

FORMAT = 1
"""The layout of what is pickled; a snapshot of another format is not read."""


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
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS snapshot (one INTEGER PRIMARY KEY CHECK (one = 1),"
            " format INTEGER, offset INTEGER, event_id TEXT, book BLOB)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS archive (case_id TEXT PRIMARY KEY, state BLOB)"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- the snapshot ------------------------------------------------------------------------

    def load(self) -> Snapshot | None:
        with self._lock:
            row = self._db.execute("SELECT format, offset, event_id, book FROM snapshot").fetchone()
        if row is None or row[0] != FORMAT:
            return None
        book = pickle.loads(row[3])  # noqa: S301 - the worker's own file (see the module)
        return Snapshot(book, row[1], row[2])

    def save(self, book: CaseBook, offset: int, event_id: str) -> int:
        """Replace the snapshot; returns its size in bytes. The book must not change while
        this runs (the worker's cases agent waits for it)."""
        blob = pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?, ?, ?)",
                (FORMAT, offset, event_id, blob),
            )
        return len(blob)

    def discard(self) -> None:
        """Forget the snapshot and the archive: they belong to a topic that is gone."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM snapshot")
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
