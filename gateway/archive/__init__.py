"""Where the usage archive keeps events for good: a sink behind one protocol (`sink`), daily JSON Lines
files by default (`jsonl`), PostgreSQL as an option (`postgres`)."""

from providers.native import overlay

overlay(__name__, __path__)

# After the overlay: `entries`, which these import, may be compiled.
from gateway.archive.jsonl import JsonlSink  # noqa: E402
from gateway.archive.postgres import PostgresSink  # noqa: E402
from gateway.archive.sink import ArchiveEntry, ArchiveSink, ArchiveUnavailable  # noqa: E402

__all__ = ["ArchiveEntry", "ArchiveSink", "ArchiveUnavailable", "JsonlSink", "PostgresSink"]
