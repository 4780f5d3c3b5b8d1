"""A multipart upload spooled to a temporary file, so audio never sits whole in memory and every
failover attempt can send it again with the deployment's model name swapped in."""

from __future__ import annotations

import mmap
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.asgi_io import ClientGone, Receive
from providers.base import RawBody
from providers.errors import InvalidRequest, PayloadTooLarge

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(rb'name="([^"]*)"', re.IGNORECASE)
_READ = 256 * 1024


class UploadSpool:
    """The request body on disk, plus where its `model` field's value sits."""

    def __init__(self, path: Path, content_type: str, boundary: bytes) -> None:
        self.path = path
        self.content_type = content_type
        self.boundary = boundary
        self.size = 0
        self.model = ""
        self._model_span = (0, 0)

    @classmethod
    async def receive(cls, receive: Receive, content_type: str, limit: int, directory: Path) -> UploadSpool:
        match = _BOUNDARY.search(content_type)
        if not content_type.lower().startswith("multipart/form-data") or match is None:
            raise InvalidRequest("Expected a multipart/form-data body with a boundary.", code="invalid_content_type")
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
        spool = cls(Path(name), content_type, match.group(1).encode())
        try:
            with os.fdopen(fd, "wb") as out:
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone("client disconnected during the upload")
                    chunk = message.get("body", b"")
                    spool.size += len(chunk)
                    if spool.size > limit:
                        raise PayloadTooLarge(f"Upload exceeds the limit of {limit} bytes.")
                    out.write(chunk)
                    more = message.get("more_body", False)
            spool._find_model()
        except BaseException:
            spool.remove()
            raise
        return spool

    def _find_model(self) -> None:
        if self.size == 0:
            raise InvalidRequest(
                "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
            )
        delimiter = b"--" + self.boundary
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = data.find(delimiter)
            while start >= 0:
                headers_start = start + len(delimiter) + 2
                headers_end = data.find(b"\r\n\r\n", headers_start)
                if headers_end < 0:
                    break
                end = data.find(b"\r\n" + delimiter, headers_end)
                if end < 0:
                    break
                name = _NAME.search(data[headers_start:headers_end])
                if name is not None and name.group(1) == b"model":
                    self._model_span = (headers_end + 4, end)
                    self.model = data[headers_end + 4 : end].decode("utf-8", "replace").strip()
                    break
                start = end + 2
        if not self.model:
            raise InvalidRequest(
                "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
            )

    def body(self, model: str) -> RawBody:
        """The upload with its model field set to `model`, readable once per attempt."""
        value = model.encode()
        begin, end = self._model_span
        path = self.path

        async def chunks() -> AsyncIterator[bytes]:
            # Reads come from the page cache the upload was just written to: short enough to stay inline.
            with open(path, "rb") as f:  # noqa: ASYNC230
                yield f.read(begin)
                yield value
                f.seek(end)
                while block := f.read(_READ):
                    yield block

        return RawBody(chunks=chunks, content_type=self.content_type, length=self.size - (end - begin) + len(value))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
