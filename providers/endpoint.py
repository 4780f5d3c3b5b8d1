"""The OpenAI endpoints the gateway serves (their paths under /v1)."""

from __future__ import annotations

from enum import StrEnum


class Endpoint(StrEnum):
    CHAT = "chat/completions"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    # Relayed as raw bytes, only to providers that implement `RelaysRaw`:
    IMAGES = "images/generations"
    MODERATIONS = "moderations"
    TRANSCRIPTIONS = "audio/transcriptions"
    TRANSLATIONS = "audio/translations"
