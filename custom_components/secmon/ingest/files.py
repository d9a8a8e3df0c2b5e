"""Reading an untrusted file: only a regular file, resolved inside the allow-list, size capped
before a byte is read, opened so that nothing can block. Everything here blocks: run it in the
executor.

A camera folder is written by whatever uploads to it. A FIFO named `.jpg` would block a plain
`open()` forever, a symlink to `/dev/zero` would be read until memory runs out, a symlink to
`/etc` would leak files outside the folders HA allows. So the path is resolved (every symlink,
folders included) and checked against the allow-list, then opened non-blocking without following
a final symlink (a link swapped in after the check is refused, not followed), and the open file
itself (fstat) must be a regular file no larger than the cap.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
_CHUNK = 1024 * 1024


class RefusedFileError(Exception):
    """The file must not be read; `reason` is one of the REASON_* constants."""

    def __init__(self, reason: str, detail: str) -> None:
        """`detail` is for the log line."""
        super().__init__(detail)
        self.reason = reason


REASON_OUTSIDE = "outside_allowlist"
REASON_SPECIAL = "not_a_regular_file"
REASON_TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class ReadFile:
    """A file's bytes with the size and mtime of the open file they came from."""

    data: bytes
    size: int
    mtime: float


def resolve_allowed(path: Path, is_allowed: Callable[[str], bool]) -> Path:
    """The fully resolved path (symlinks included); RefusedFileError if it is outside the
    allow-list. `is_allowed` is `hass.config.is_allowed_path` (it blocks: call this in the
    executor)."""
    resolved = Path(os.path.realpath(path))
    if not is_allowed(str(resolved)):
        raise RefusedFileError(
            REASON_OUTSIDE, f"{path} resolves to {resolved}, outside the allowed folders"
        )
    return resolved


def open_capped(
    path: Path, max_bytes: int, shown: Path | None = None
) -> tuple[int, os.stat_result]:
    """The open descriptor of a regular file of at most `max_bytes`, and its fstat; the caller
    closes it. RefusedFileError (naming `shown`, by default `path`) otherwise, OSError if it
    cannot be opened. Never blocks on a FIFO or device, never follows a final symlink."""
    shown = path if shown is None else shown
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        if err.errno == getattr(os, "ELOOP", -1):
            raise RefusedFileError(REASON_SPECIAL, f"{shown} became a symlink") from err
        raise
    try:
        info = _checked_stat(fd, shown, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def _checked_stat(fd: int, shown: Path, max_bytes: int) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise RefusedFileError(REASON_SPECIAL, f"{shown} is not a regular file")
    if info.st_size > max_bytes:
        raise RefusedFileError(
            REASON_TOO_LARGE, f"{shown} has {info.st_size} bytes, more than {max_bytes}"
        )
    return info


def read_capped(path: Path, max_bytes: int) -> ReadFile:
    """Read a regular file of at most `max_bytes`; RefusedFileError otherwise, OSError if it
    cannot be opened. Never blocks on a FIFO or device, never follows a final symlink."""
    fd, info = open_capped(path, max_bytes)
    try:
        chunks: list[bytes] = []
        total = 0
        # Read at most one byte past the cap: a file that grows after fstat is still refused.
        while total <= max_bytes:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise RefusedFileError(REASON_TOO_LARGE, f"{path} grew past {max_bytes} bytes")
        return ReadFile(b"".join(chunks), total, info.st_mtime)
    finally:
        os.close(fd)


def read_untrusted(path: Path, is_allowed: Callable[[str], bool], max_bytes: int) -> ReadFile:
    """`resolve_allowed`, then `read_capped` of the resolved path."""
    return read_capped(resolve_allowed(path, is_allowed), max_bytes)
