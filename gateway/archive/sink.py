"""The seam between the usage archive and the storage that keeps usage events for good."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class ArchiveEntry(NamedTuple):
    """One entry of a tenant's usage stream, as the archive hands it to a sink."""

    entry_id: str
    """The stream entry's id, e.g. `1764581337123-0`."""
    raw: bytes
    """The entry's `event` field as the ledger wrote it; for an unreadable entry (`ts` None), the
    JSON object `{"stream", "id", "fields"}` that describes the whole entry."""
    ts: float | None
    """The event's `ts`, a real instant (UNIX seconds). None: unreadable. The event itself is not parsed
    here (`gateway.archive.entries.parsed_event` does, for a sink that needs its fields)."""


class ArchiveUnavailable(Exception):
    """A sink could not make a batch durable, or read the archive back. Its message names the cause and
    is safe to log: it never holds a credential."""


class ArchiveSink(Protocol):
    async def write(self, tenant: str, entries: Sequence[ArchiveEntry]) -> None:
        """Make every entry (all of the tenant's stream) durable, and return only once all of them are.

        Delivery is at least once: the same entries may come again (a crash between this write and the
        acknowledgement, or a slow consumer whose entries another one reclaimed). Raises
        ArchiveUnavailable or OSError when not all of them are durable; the archive then acknowledges
        none of them and writes them again in a later round."""
        ...

    async def aclose(self) -> None:
        """Release what the sink holds open. Called once, by whoever built the sink, after its last use."""
        ...
