"""Images, moderations and audio endpoints of the fake OpenAI upstream."""

from __future__ import annotations

import hashlib
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import orjson
from aiohttp import web

AUDIO_PATHS = ("/v1/audio/transcriptions", "/v1/audio/translations")


def parse_multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """Form fields as strings; files as {filename, size, sha256} (what tests compare)."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            fields[str(name)] = {
                "filename": filename,
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        else:
            fields[str(name)] = payload.decode()
    return fields


async def images(request: web.Request, body: dict[str, Any], behaviors: Any) -> web.StreamResponse:
    n = int(body.get("n") or 1)
    payload = {
        "created": int(time.time()),
        "data": [{"b64_json": "iVBORw0KGgo=", "revised_prompt": body.get("prompt")} for _ in range(n)],
        "usage": {"input_tokens": 7, "output_tokens": 1056, "total_tokens": 1063},
    }
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def moderations(request: web.Request, body: dict[str, Any], behaviors: Any) -> web.StreamResponse:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    results = [{"flagged": "kill" in str(item), "categories": {"violence": "kill" in str(item)}} for item in items]
    payload = {"id": "modr-fake", "model": body.get("model"), "results": results}
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def audio(request: web.Request, body: dict[str, Any], behaviors: Any) -> web.StreamResponse:
    file = body.get("file") or {}
    text = f"fake transcript of {file.get('size', 0)} bytes"
    if body.get("response_format") == "text":
        return web.Response(text=text + "\n", content_type="text/plain")
    payload: dict[str, Any] = {"text": text}
    if body.get("response_format") == "verbose_json":  # as 16 kHz 16-bit mono: 32,000 bytes a second
        payload.update(task="transcribe", language="english", duration=file.get("size", 0) / 32000, segments=[])
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


ROUTES = {
    ("POST", "/v1/images/generations"): images,
    ("POST", "/v1/moderations"): moderations,
    ("POST", AUDIO_PATHS[0]): audio,
    ("POST", AUDIO_PATHS[1]): audio,
}
