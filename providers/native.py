"""Use the mypyc-compiled request path from build/native/ when, and only when, it matches the sources.

`scripts/build_native.py` compiles the hot modules into build/native/ and writes a manifest of each
source file's SHA-256. Each package's `__init__` calls `overlay(__name__, __path__)`; the first call
decides for the whole process:

- in use: every module in the manifest still has its recorded hash, the build is for this Python
  (extension suffix), and `SWITCHYARD_NATIVE` is not `0`;
- otherwise the sources are used, all of them: an edited module never runs as a stale extension,
  and compiled and interpreted copies of the request path are never mixed.

In use, build/native/<package>/ goes in front of the package's `__path__` (so a compiled module is
found before its `.py`), and build/native/ joins `sys.path` for the shared mypyc runtime library.
Nothing is compiled or written here. `status()` says which was chosen and why, for the startup log.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "native"

_decision: tuple[bool, str] | None = None


def decide(build: Path, root: Path, switch: str | None, ext_suffix: str | None) -> tuple[bool, str]:
    """Whether the build in `build` can stand in for the sources under `root`, and why (see above).
    `switch` is $SWITCHYARD_NATIVE, `ext_suffix` this interpreter's extension suffix."""
    if switch == "0":
        return False, "off (SWITCHYARD_NATIVE=0)"
    manifest_path = build / "manifest.json"
    if not manifest_path.is_file():
        return False, "not built (python scripts/build_native.py)"
    try:
        manifest = json.loads(manifest_path.read_text())
        modules: dict[str, str] = manifest["modules"]
        suffix = manifest["ext_suffix"]
        runtime = build / manifest["runtime"]
    except (OSError, ValueError, KeyError, TypeError):
        return False, f"unreadable manifest {manifest_path}"
    if suffix != ext_suffix:
        return False, f"built for another Python ({suffix})"
    if not runtime.is_file():
        return False, f"incomplete build: {runtime.name} is missing"
    for module, digest in modules.items():
        source = root / (module.replace(".", "/") + ".py")
        try:
            current = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            return False, f"stale: {module} has no source"
        if current != digest:
            return False, f"stale: {module} changed since the build (rebuild with python scripts/build_native.py)"
        if not (build / (module.replace(".", "/") + suffix)).is_file():
            return False, f"incomplete build: {module} is missing"
    return True, f"on ({len(modules)} compiled modules)"


def decision() -> tuple[bool, str]:
    global _decision
    if _decision is None:
        _decision = decide(BUILD, ROOT, os.environ.get("SWITCHYARD_NATIVE"), sysconfig.get_config_var("EXT_SUFFIX"))
        if _decision[0] and str(BUILD) not in sys.path:
            sys.path.append(str(BUILD))
    return _decision


def overlay(package: str, path: list[str]) -> None:
    """Put the package's compiled modules ahead of its sources, if the build is in use."""
    in_use, _ = decision()
    if not in_use:
        return
    compiled = BUILD.joinpath(*package.split("."))
    if compiled.is_dir() and str(compiled) not in path:
        path.insert(0, str(compiled))


def status() -> str:
    return decision()[1]
