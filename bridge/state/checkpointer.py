"""Copies a SQLite database's WAL into the database file from a thread of its own, while one big writer goes on.

SQLite checkpoints on the committing connection by default (`wal_autocheckpoint`): the commit that takes the WAL past
1,000 pages copies them into the database and waits for the disk twice. A first poll of 10,000 feeds writes about
a gigabyte of entries in 30 commits, and each such wait held up its event loop. With the writer's automatic
checkpoints off, this thread's own connection runs passive checkpoints, which never block the writer (SQLite:
https://www.sqlite.org/wal.html#checkpointing); sqlite3 lets the GIL go while one runs. It reports how long the WAL
has grown (`wal_frames`): only the writer can make it start over (State.commit_group).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

# How often to checkpoint: about as often as the poll commits a group (bridge/pipeline.py GROUP_SECONDS)
INTERVAL_SECONDS = 1.0


class Checkpointer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.interval = INTERVAL_SECONDS  # read here, not as a default argument: the tests shorten it
        self.wal_frames = 0  # the WAL's length in frames at the last checkpoint (it starts over at a restart)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bridge-checkpointer", daemon=True)

    def start(self) -> "Checkpointer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the writer's own checkpoint at the end (State.group_commit) still copies everything
        try:
            while not self._stop.wait(self.interval):
                try:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.wal_frames = max(frames, 0)  # -1: not in WAL mode
                except sqlite3.Error:
                    pass  # busy with another checkpoint, or a disk error the writer meets and reports itself
        finally:
            conn.close()
