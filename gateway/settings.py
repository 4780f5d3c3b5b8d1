"""Process settings: the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    config_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None
    port: int | None = None

    @classmethod
    def from_environ(cls, config_path: str | Path, host: str | None = None, port: int | None = None) -> Settings:
        return cls(config_path=Path(config_path), env=dict(os.environ), host=host, port=port)
