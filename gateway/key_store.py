"""Virtual API keys in Redis: created, listed, rotated and revoked through the admin API.

Only the SHA-256 of a secret is stored (`sy:key:<sha256 hex>`, a hash); the secret is shown once, when
created. `sy:keyids` maps each key id to its hash, for listing and admin operations. Every gateway keeps
a small cache of lookups (positive for `ledger.key_cache_ttl`, negative for a second) and drops entries
when a revocation or change is published on `sy:keys:events`, so a revoked key stops working on every
replica at once, and within the cache TTL at the latest if a message is missed. While Redis does not
answer, keys seen before keep working from the cache (stale-if-error); unseen ones get a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import TypeAdapter
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gateway.auth import Principal, hash_key
from gateway.config.tenancy import BudgetConfig, Budgets, RateLimitConfig
from providers.errors import AuthenticationFailed, NotFound, ServiceUnavailable

log = logging.getLogger("switchyard.keys")

CHANNEL = "sy:keys:events"
IDS = "sy:keyids"
SECRET_PREFIX = "sk-sy-"
_NEGATIVE_TTL = 1.0
_CACHE_LIMIT = 100_000
_BUDGETS = TypeAdapter(Budgets)


def record_key(digest_hex: str) -> str:
    return f"sy:key:{digest_hex}"


@dataclass(frozen=True, slots=True)
class VirtualKey:
    key_id: str
    tenant: str
    team: str | None
    project: str | None
    name: str | None
    budgets: tuple[BudgetConfig, ...]
    rate_limit: RateLimitConfig | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    digest: str

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def principal(self) -> Principal:
        return Principal(
            tenant=self.tenant,
            team=self.team,
            key_id=self.key_id,
            project=self.project,
            budgets=self.budgets,
            rate_limit=self.rate_limit,
        )

    def public(self, now: float | None = None) -> dict[str, Any]:
        """What the admin API shows: never the secret, only the first hex digits of its hash."""
        now = time.time() if now is None else now
        return {
            "id": self.key_id,
            "object": "api_key",
            "tenant": self.tenant,
            "team": self.team,
            "project": self.project,
            "name": self.name,
            "budget": [b.model_dump() for b in self.budgets],
            "rate_limit": self.rate_limit.model_dump() if self.rate_limit else None,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "status": "active" if self.active(now) else ("revoked" if self.revoked_at else "expired"),
            "sha256_prefix": self.digest[:12],
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _to_hash(key: VirtualKey) -> dict[Any, Any]:
    return {
        "key_id": key.key_id.encode(),
        "data": orjson.dumps(
            {
                "tenant": key.tenant,
                "team": key.team,
                "project": key.project,
                "name": key.name,
                "budget": [b.model_dump() for b in key.budgets],
                "rate_limit": key.rate_limit.model_dump() if key.rate_limit else None,
                "created_at": key.created_at,
                "expires_at": key.expires_at,
                "revoked_at": key.revoked_at,
            }
        ),
    }


def _from_hash(digest: str, raw: Mapping[Any, Any]) -> VirtualKey:
    data = orjson.loads(raw[b"data"])
    return VirtualKey(
        key_id=_text(raw[b"key_id"]),
        tenant=data["tenant"],
        team=data["team"],
        project=data["project"],
        name=data["name"],
        budgets=_BUDGETS.validate_python(data["budget"]),
        rate_limit=RateLimitConfig.model_validate(data["rate_limit"]) if data["rate_limit"] else None,
        created_at=data["created_at"],
        expires_at=data["expires_at"],
        revoked_at=data["revoked_at"],
        digest=digest,
    )


class KeyStore:
    def __init__(self, client: aioredis.Redis, cache_ttl: float = 5.0) -> None:
        self._redis = client
        self.cache_ttl = cache_ttl
        self._cache: dict[bytes, tuple[Principal | None, float]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="key-invalidation")

    async def aclose(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.cancel()
        _, pending = await asyncio.wait({listener}, timeout=1.0)
        if pending and self._pubsub is not None:
            # redis-py's pubsub can absorb a cancellation that lands while it reads (seen in tests that
            # stop a gateway right after start-up): close its connection under it, then cancel again.
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            listener.cancel()
            _, pending = await asyncio.wait({listener}, timeout=1.0)
        if pending:
            log.warning("key invalidation listener did not stop; leaving it")

    async def lookup(self, digest: bytes, now: float) -> Principal:
        """The principal of an active virtual key with this SHA-256 digest; 401 otherwise."""
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            if cached[0] is None:
                raise AuthenticationFailed("Incorrect API key provided.")
            return cached[0]
        try:
            raw = await self._redis.hgetall(record_key(digest.hex()))
        except (RedisError, OSError):
            if cached is not None and cached[0] is not None:
                return cached[0]  # stale-if-error: the store is down, the key was valid a moment ago
            raise ServiceUnavailable("The key store is unreachable; retry shortly.", code="store_unavailable") from None
        key = _from_hash(digest.hex(), raw) if raw else None
        principal = key.principal() if key is not None and key.active(time.time()) else None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        ttl = self.cache_ttl if principal is not None else _NEGATIVE_TTL
        if principal is not None and key is not None and key.expires_at is not None:
            ttl = min(ttl, max(0.0, key.expires_at - time.time()))
        self._cache[digest] = (principal, now + ttl)
        if principal is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return principal

    def forget(self, digest_hex: str) -> None:
        with contextlib.suppress(ValueError):
            self._cache.pop(bytes.fromhex(digest_hex), None)

    async def _listen(self) -> None:
        while True:
            pubsub = self._pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self._cache.clear()  # messages may have been missed while unsubscribed
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.forget(_text(message["data"]))
            except (RedisError, OSError) as exc:
                log.debug("key invalidation channel lost (%s); resubscribing", type(exc).__name__)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(1.0)

    # Admin operations: each writes everything it changes in one MULTI, and publishes the change.

    async def create(
        self,
        *,
        tenant: str,
        team: str | None = None,
        project: str | None = None,
        name: str | None = None,
        budgets: tuple[BudgetConfig, ...] = (),
        rate_limit: RateLimitConfig | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, VirtualKey]:
        """A new key: returns its secret (shown once, never stored) and its record."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(secret)
        key = VirtualKey(
            key_id="key_" + secrets.token_hex(8),
            tenant=tenant,
            team=team,
            project=project,
            name=name,
            budgets=budgets,
            rate_limit=rate_limit,
            created_at=time.time(),
            expires_at=expires_at,
            revoked_at=None,
            digest=digest,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(record_key(digest), mapping=_to_hash(key))
            pipe.hset(IDS, key.key_id, digest)
            await pipe.execute()
        return secret, key

    async def get(self, key_id: str) -> VirtualKey:
        found = await self._redis.hget(IDS, key_id)
        raw = await self._redis.hgetall(record_key(_text(found))) if found is not None else None
        if not raw or found is None:
            raise NotFound(f"No API key with id {key_id!r}.", param="key_id", code="key_not_found")
        return _from_hash(_text(found), raw)

    async def list(self, tenant: str | None = None) -> list[VirtualKey]:
        digests = [_text(d) for d in (await self._redis.hgetall(IDS)).values()]
        async with self._redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.hgetall(record_key(digest))
            raws = await pipe.execute()
        keys = [_from_hash(d, raw) for d, raw in zip(digests, raws, strict=True) if raw]
        return sorted((k for k in keys if tenant is None or k.tenant == tenant), key=lambda k: k.created_at)

    async def revoke(self, key_id: str, at: float | None = None) -> VirtualKey:
        """Revoke now (or expire at `at`, for a rotation's grace period). Idempotent."""
        key = await self.get(key_id)
        now = time.time()
        if at is None or at <= now:
            changed = key if key.revoked_at is not None else dataclasses.replace(key, revoked_at=now)
        else:
            changed = dataclasses.replace(key, expires_at=min(at, key.expires_at or at))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(record_key(key.digest), mapping=_to_hash(changed))
            pipe.publish(CHANNEL, key.digest)
            await pipe.execute()
        self.forget(key.digest)
        return changed

    async def rotate(self, key_id: str, grace: float = 0.0) -> tuple[str, VirtualKey, VirtualKey]:
        """A new secret with the same attributes; the old key stops now or after `grace` seconds."""
        old = await self.get(key_id)
        if not old.active(time.time()):
            raise NotFound(f"The API key {key_id!r} is revoked or expired.", param="key_id", code="key_inactive")
        secret, new = await self.create(
            tenant=old.tenant,
            team=old.team,
            project=old.project,
            name=old.name,
            budgets=old.budgets,
            rate_limit=old.rate_limit,
            expires_at=old.expires_at,
        )
        retired = await self.revoke(key_id, at=time.time() + grace if grace > 0 else None)
        return secret, new, retired
