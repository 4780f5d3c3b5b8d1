"""CPU time and memory of a process (and its descendants) from /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds; None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state is index 0, so utime (field 14) is index 11 and stime (15) index 12.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """All live descendants of pid (children, grandchildren, ...), found by scanning /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status_kb(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/<pid>/status, e.g. VmRSS or VmHWM."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


class CpuMeter:
    """CPU seconds used by a process, and by the process plus its descendants, between two points."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start: dict[int, float] = {}

    def _snapshot(self) -> dict[int, float]:
        snap: dict[int, float] = {}
        for pid in [self.pid, *descendants(self.pid)]:
            cpu = cpu_seconds(pid)
            if cpu is not None:
                snap[pid] = cpu
        return snap

    def start(self) -> None:
        self._start = self._snapshot()

    def settle(self, quiet: float = 2.5, busy_share: float = 0.02, timeout: float = 30.0) -> float:
        """Wait until the process tree has been idle (under `busy_share` of one core) for `quiet` seconds,
        so work deferred past the responses (the usage ledger's writes, the archive's next round, every
        2 s) is counted in the CPU per request. Returns the seconds waited."""
        began = time.monotonic()
        step = 0.25
        window: list[float] = []
        last = sum(self._snapshot().values())
        while time.monotonic() - began < timeout:
            time.sleep(step)
            now = sum(self._snapshot().values())
            window.append(now - last)
            last = now
            window = window[-int(quiet / step) :]
            if len(window) == int(quiet / step) and sum(window) < busy_share * quiet:
                break
        return time.monotonic() - began

    def stop(self) -> tuple[float, float]:
        """(main process, whole tree) CPU seconds since start(); processes that came or went are ignored."""
        end = self._snapshot()
        main = end.get(self.pid, 0.0) - self._start.get(self.pid, 0.0)
        tree = sum(end[p] - self._start[p] for p in end.keys() & self._start.keys())
        return main, tree
