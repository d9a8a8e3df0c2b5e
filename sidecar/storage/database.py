"""The state file: one SQLite connection in WAL mode, migrated to the current schema on open.

Stores (events/store.py, and any other table's owner) share one `StateDatabase`: its connection,
its transactions, its clock and its one worker thread. Code on the event loop reaches the file
only through `run` (that thread), so a slow disk never stalls the loop and the connection is never
used by two threads at once.

Opening checks the file before trusting it:
- a file that is not a database, fails SQLite's quick check or is empty (0 bytes: truncated) is
  damaged: it is moved aside (kept, with its -wal/-shm, as `events.sqlite.damaged-<time>`), one
  loud line says what was lost, and the sidecar starts with empty state (`damaged_file` says where
  the old file went);
- a data directory or file that cannot be written (read-only, missing permissions, not a
  directory) raises StateStorageError: one line, exit code 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from ..domain import StateStorageError
from .schema import SCHEMA_VERSION, migrate

_LOGGER = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

# The state file's name inside --data-dir.
STATE_FILE = "events.sqlite"
# SQLite primary result codes that mean "this file is damaged" (not "this disk is unusable").
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


class _DamagedFile(Exception):
    """The file opened but is not a sound database."""


class StateDatabase:
    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, max_bytes: int = 0
    ) -> None:
        """Open (or create) the file and apply the migrations it lacks. `clock` gives the epoch
        seconds written as row times and compared with retention limits. `max_bytes` (0: no
        limit) bounds the file: past it, writes fail as on a full disk (SQLITE_FULL)."""
        self.path = path
        self.now = clock
        self.max_bytes = max_bytes
        # Where a damaged file found at start-up was moved; None when the file was sound.
        self.damaged_file: Path | None = None
        self.connection = self._open()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="secmon-state")

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StateStorageError(
                f"cannot create the data directory {self.path.parent}: {err.strerror or err}; "
                "pass a writable --data-dir"
            ) from err
        with contextlib.suppress(OSError):
            if self.path.stat().st_size == 0 and not _has_content(_sibling(self.path, "-wal")):
                self.damaged_file = self._move_aside("it is empty (0 bytes)")
        try:
            return self._connect()
        except (sqlite3.DatabaseError, _DamagedFile) as err:
            if not _is_damage(err) or self.damaged_file is not None:
                raise self._unusable(err) from err
            self.damaged_file = self._move_aside(str(err))
        try:
            return self._connect()
        except (sqlite3.DatabaseError, _DamagedFile) as err:
            raise self._unusable(err) from err

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            if self.max_bytes > 0:
                page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
                pages = max(1, self.max_bytes // page_size)
                connection.execute(f"PRAGMA max_page_count = {pages:d}")
            _quick_check(connection)
            found = migrate(connection)
            # Fail now, not at the first frame, when the file cannot be written at all.
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("COMMIT")
        except BaseException:
            connection.close()
            raise
        if found != SCHEMA_VERSION:
            _LOGGER.info("State file %s: schema version %d -> %d", self.path, found, SCHEMA_VERSION)
        return connection

    def _move_aside(self, why: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        try:
            for suffix in ("", "-wal", "-shm"):
                source = _sibling(self.path, suffix)
                if source.exists():
                    os.replace(source, _sibling(target, suffix))
        except OSError as err:
            raise StateStorageError(
                f"the state file {self.path} is damaged ({why}) and cannot be moved aside: "
                f"{err.strerror or err}"
            ) from err
        _LOGGER.error(
            "STATE FILE DAMAGED: %s (%s). Moved it to %s (kept, not deleted) and starting with "
            "empty state: open batches and undelivered verdicts it held will not be resumed",
            self.path, why, target,
        )
        return target

    def _unusable(self, err: BaseException) -> StateStorageError:
        return StateStorageError(
            f"cannot use the state file {self.path}: {err}; check that --data-dir "
            f"{self.path.parent} is writable and its disk has space"
        )

    # -- use -----------------------------------------------------------------------------------
    async def run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run `fn` (a store method) on the state file's thread, in call order."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, lambda: fn(*args, **kwargs))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
            self.connection.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (a full disk can end the transaction).
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self.connection.close()


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _quick_check(connection: sqlite3.Connection) -> None:
    check = str(connection.execute("PRAGMA quick_check").fetchone()[0])
    if check != "ok":
        raise _DamagedFile(f"SQLite's quick check failed: {check}")


def _is_damage(err: BaseException) -> bool:
    if isinstance(err, _DamagedFile):
        return True
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
