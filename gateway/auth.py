"""API keys → principals. Only SHA-256 hashes of keys are kept; lookups compare hashes in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from gateway.config.schema import AuthConfig
from gateway.config.tenancy import BudgetConfig, RateLimitConfig
from providers.errors import AuthenticationFailed


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    team: str | None
    key_id: str
    """A non-secret identifier of the key: its name, or the first 12 hex digits of its hash."""
    is_admin: bool = False
    project: str | None = None
    budgets: tuple[BudgetConfig, ...] = ()
    """The key's own budgets (the tenant's and team's come from the config's `tenants`)."""
    rate_limit: RateLimitConfig | None = None


ADMIN = Principal(tenant="admin", team=None, key_id="admin", is_admin=True)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def credential_digest(authorization: bytes | None) -> bytes:
    """SHA-256 of the key in an `Authorization: Bearer <key>` (or bare key) header; 401 when missing."""
    if not authorization:
        raise AuthenticationFailed("Missing API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key")
    secret = authorization[7:] if authorization[:7].lower() == b"bearer " else authorization
    return hashlib.sha256(secret.strip()).digest()


class KeyRing:
    def __init__(self, config: AuthConfig) -> None:
        self._by_hash: dict[bytes, Principal] = {}
        for key in config.keys:
            digest = key.key_sha256 or hash_key(key.key or "")
            key_id = key.name or f"key-{digest[:12]}"
            self._by_hash[bytes.fromhex(digest)] = Principal(
                key.tenant, key.team, key_id, project=key.project, budgets=key.budget, rate_limit=key.rate_limit
            )
        admin = config.admin_key_sha256 or (hash_key(config.admin_key) if config.admin_key else None)
        self._admin = bytes.fromhex(admin) if admin else None

    def principal(self, authorization: bytes | None) -> Principal:
        """The principal of an `Authorization: Bearer <key>` (or `x-api-key`) value; raises 401."""
        principal = self.find(credential_digest(authorization))
        if principal is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return principal

    def principals(self) -> list[Principal]:
        """The config's tenant keys."""
        return list(self._by_hash.values())

    def find(self, digest: bytes) -> Principal | None:
        """The config's key (or the admin key) with this SHA-256 digest."""
        # The lookup is keyed by the SHA-256 of the key, so its timing says nothing about any valid key.
        principal = self._by_hash.get(digest)
        if principal is not None:
            return principal
        if self._admin is not None and hmac.compare_digest(digest, self._admin):
            return ADMIN
        return None

    def is_admin(self, authorization: bytes | None) -> bool:
        if not authorization or self._admin is None:
            return False
        secret = authorization[7:] if authorization[:7].lower() == b"bearer " else authorization
        return hmac.compare_digest(hashlib.sha256(secret.strip()).digest(), self._admin)
