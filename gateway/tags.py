"""`x-switchyard-tags: feature=search,env=prod`: attribution tags a request adds to its usage record.

Bounded so that a client cannot blow up the ledger: at most 10 tags, names up to 64 and values up to
128 characters, names from letters, digits, `_ . -`, values also `: / @ +` (no commas, equals signs,
spaces or control characters).
"""

from __future__ import annotations

import re

from providers.errors import InvalidRequest

MAX_TAGS = 10
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_VALUE = re.compile(r"^[A-Za-z0-9_.:/@+-]{1,128}$")
HEADER = "x-switchyard-tags"


def parse_tags(raw: bytes | None) -> dict[str, str]:
    """The tags of a header value; raises `InvalidRequest` (400) naming the header and the bad part."""
    if raw is None:
        return {}
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _bad("tags must be ASCII") from None
    if not text:
        return {}
    tags: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise _bad(f"{part.strip()!r} is not name=value")
        if not _NAME.match(name):
            raise _bad(f"bad tag name {name[:70]!r} (letters, digits, _ . -; at most 64, starting with a letter)")
        if not _VALUE.match(value):
            raise _bad(f"bad value for tag {name!r} (1-128 of letters, digits, _ . : / @ + -)")
        if name in tags:
            raise _bad(f"tag {name!r} given twice")
        tags[name] = value
        if len(tags) > MAX_TAGS:
            raise _bad(f"at most {MAX_TAGS} tags")
    return tags


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid {HEADER} header: {message}.", param=HEADER, code="invalid_tags")
