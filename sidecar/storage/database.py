"""The state file: one SQLite connection in WAL mode, migrated to the current schema on open.

Stores (events/store.py, and any other table's owner) share one `StateDatabase`: its connection,
its transactions and its clock.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .schema import SCHEMA_VERSION, migrate

_LOGGER = logging.getLogger(__name__)

# The state file's name inside --data-dir.
STATE_FILE = "events.sqlite"


class StateDatabase:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        """Open (or create) the file and apply the migrations it lacks. `clock` gives the epoch
        seconds written as row times and compared with retention limits."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.now = clock
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            found = migrate(self.connection)
        except BaseException:
            self.connection.close()
            raise
        if found != SCHEMA_VERSION:
            _LOGGER.info("State file %s: schema version %d -> %d", path, found, SCHEMA_VERSION)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()
