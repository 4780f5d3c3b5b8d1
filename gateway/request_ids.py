"""Request ids: 24 hex digits, unique across processes and restarts, with no system call per request.

A random 48-bit prefix drawn once per `RequestIds` (one per gateway process: workers build their app
after the fork), then a 48-bit counter from a random start. Ids key the ledger's dedupe, so they must
never repeat; `os.urandom` per request cost a system call each.
"""

from __future__ import annotations

import os

_MASK = (1 << 48) - 1


class RequestIds:
    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._count = int.from_bytes(os.urandom(6), "big")

    def next(self) -> str:
        count = self._count = (self._count + 1) & _MASK
        # Its 6 bytes in hex: with a format spec (`:012x`), parsed on every call, a call ran 3,778 more
        # instructions (callgrind, 20,000 calls).
        return self._prefix + count.to_bytes(6, "big").hex()
