"""The default archive sink: append-only daily JSON Lines files, fsynced before the archive acknowledges.

Each event is one line of `<directory>/<YYYY-MM-DD>/<consumer>.jsonl` (the UTC date of its `ts`); an
unreadable entry goes to `<directory>/unreadable/<consumer>.jsonl`. One file per consumer, so that
gateways sharing the directory never interleave their writes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.archive.entries import UNREADABLE_DIR, lines_by_folder
from gateway.archive.sink import ArchiveEntry

__all__ = ["UNREADABLE_DIR", "JsonlSink"]


class JsonlSink:
    def __init__(self, directory: Path, consumer: str) -> None:
        """`consumer` names the files this sink appends to (the archive checks it is a safe file name)."""
        self.directory = directory
        self._file = f"{consumer}.jsonl"

    async def write(self, tenant: str, entries: Sequence[ArchiveEntry]) -> None:
        """Append the entries' lines, flush and fsync each file (and any new directory); raises OSError."""
        by_folder = lines_by_folder(entries)
        if by_folder:
            lines = {self.directory / folder / self._file: batch for folder, batch in by_folder.items()}
            await asyncio.to_thread(_append_durably, lines)

    async def aclose(self) -> None:
        return None


def _append_durably(lines: Mapping[Path, Sequence[bytes]]) -> None:
    for path, batch in lines.items():
        new_dir = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        if new_dir:
            _fsync_dir(path.parent.parent)
        new_file = not path.exists()
        data = b"".join(line + b"\n" for line in batch)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)  # read: to check the last byte
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # an earlier write was cut short: never glue a line onto its torn end
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new_file:
            _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Make a new directory entry durable, not only the file's contents."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
