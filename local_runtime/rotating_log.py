"""A size-rotated log file for a child process's output: `name.log`, then `name.log.1` … `name.log.N`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


class RotatingLog:
    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        """Append `data`; rotate first when it would pass `max_bytes` (after the last complete line, so a
        line is split across files only when it alone is larger than the limit)."""
        while data:
            room = self.max_bytes - self._size
            if len(data) <= room:
                self._file.write(data)
                self._size += len(data)
                break
            cut = data.rfind(b"\n", 0, room) + 1 if room > 0 else 0
            if cut == 0 and self._size == 0:
                cut = max(room, 1)  # one line longer than the whole file: split it
            self._file.write(data[:cut])
            data = data[cut:]
            self.rotate()
        self._file.flush()

    def rotate(self) -> None:
        self._file.close()
        if self.backups > 0:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        self._file.close()
