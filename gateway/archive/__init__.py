"""Where the usage archive keeps events for good: a sink behind one protocol (`sink`), daily JSON Lines
files by default (`jsonl`), PostgreSQL as an option (`postgres`)."""

from gateway.archive.jsonl import JsonlSink
from gateway.archive.postgres import PostgresSink
from gateway.archive.sink import ArchiveEntry, ArchiveSink, ArchiveUnavailable

__all__ = ["ArchiveEntry", "ArchiveSink", "ArchiveUnavailable", "JsonlSink", "PostgresSink"]
