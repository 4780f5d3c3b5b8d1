from __future__ import annotations

import pytest

from gateway.auth import KeyRing, hash_key
from gateway.config.schema import AuthConfig
from providers.errors import AuthenticationFailed


def ring() -> KeyRing:
    return KeyRing(
        AuthConfig.model_validate(
            {
                "admin_key": "sk-admin-secret",
                "keys": [
                    {"key": "sk-plain-key-1", "tenant": "acme", "team": "search"},
                    {"key_sha256": hash_key("sk-hashed-key"), "tenant": "globex", "name": "ci"},
                ],
            }
        )
    )


def test_keys_map_to_tenants() -> None:
    keys = ring()
    acme = keys.principal(b"Bearer sk-plain-key-1")
    assert (acme.tenant, acme.team, acme.is_admin) == ("acme", "search", False)
    assert acme.key_id.startswith("key-") and "sk-plain" not in acme.key_id
    assert keys.principal(b"Bearer sk-hashed-key").key_id == "ci"
    assert keys.principal(b"Bearer sk-admin-secret").is_admin
    assert keys.is_admin(b"Bearer sk-admin-secret") and not keys.is_admin(b"Bearer sk-plain-key-1")


@pytest.mark.parametrize("header", [None, b"", b"Bearer ", b"Bearer sk-wrong", b"Bearer sk-plain-key-"])
def test_bad_keys_are_401(header: bytes | None) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        ring().principal(header)
    assert info.value.status == 401
