"""The compiled request path stands in for the sources only while it matches them, all or nothing."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from providers import native

SUFFIX = ".cpython-311-x86_64-linux-gnu.so"
SOURCES = {"pkg.fast": "def f() -> int:\n    return 1\n", "pkg.sub.other": "X = 2\n"}


def fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """Sources under root/, a build of them under build/ (empty files where the extensions would be)."""
    root, build = tmp_path / "root", tmp_path / "build"
    hashes = {}
    for module, text in SOURCES.items():
        source = root / (module.replace(".", "/") + ".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(text)
        hashes[module] = hashlib.sha256(text.encode()).hexdigest()
        extension = build / (module.replace(".", "/") + SUFFIX)
        extension.parent.mkdir(parents=True, exist_ok=True)
        extension.write_bytes(b"")
    (build / f"abc__mypyc{SUFFIX}").write_bytes(b"")
    manifest = {"ext_suffix": SUFFIX, "runtime": f"abc__mypyc{SUFFIX}", "modules": hashes}
    (build / "manifest.json").write_text(json.dumps(manifest))
    return build, root


def test_a_build_that_matches_every_source_is_used(tmp_path: Path) -> None:
    build, root = fake_build(tmp_path)
    assert native.decide(build, root, None, SUFFIX) == (True, "on (2 compiled modules)")
    assert native.decide(build, root, "1", SUFFIX)[0]


def test_switched_off_not_built_or_for_another_python_uses_the_sources(tmp_path: Path) -> None:
    build, root = fake_build(tmp_path)
    assert native.decide(build, root, "0", SUFFIX) == (False, "off (SWITCHYARD_NATIVE=0)")
    assert native.decide(build, root, None, ".cpython-312-x86_64-linux-gnu.so")[1].startswith("built for another")
    assert native.decide(tmp_path / "nowhere", root, None, SUFFIX)[1].startswith("not built")
    (build / "manifest.json").write_text("{not json")
    assert native.decide(build, root, None, SUFFIX)[1].startswith("unreadable manifest")


def test_one_edited_source_turns_the_whole_build_off(tmp_path: Path) -> None:
    build, root = fake_build(tmp_path)
    (root / "pkg/sub/other.py").write_text("X = 3\n")
    in_use, why = native.decide(build, root, None, SUFFIX)
    assert not in_use and why.startswith("stale: pkg.sub.other changed")


def test_a_missing_source_extension_or_runtime_library_turns_it_off(tmp_path: Path) -> None:
    build, root = fake_build(tmp_path)
    (root / "pkg/fast.py").unlink()
    assert native.decide(build, root, None, SUFFIX)[1] == "stale: pkg.fast has no source"
    build, root = fake_build(tmp_path / "b")
    (build / f"pkg/fast{SUFFIX}").unlink()
    assert native.decide(build, root, None, SUFFIX)[1] == "incomplete build: pkg.fast is missing"
    build, root = fake_build(tmp_path / "c")
    (build / f"abc__mypyc{SUFFIX}").unlink()
    assert native.decide(build, root, None, SUFFIX)[1].startswith("incomplete build: abc__mypyc")


def built_here() -> bool:
    manifest = native.BUILD / "manifest.json"
    return manifest.is_file() and json.loads(manifest.read_text())["ext_suffix"] == sysconfig.get_config_var(
        "EXT_SUFFIX"
    )


@pytest.mark.skipif(not built_here(), reason="no build (python scripts/build_native.py)")
def test_this_process_runs_the_build_exactly_when_it_matches_the_sources() -> None:
    """`make test` builds first, so the suite runs compiled; with SWITCHYARD_NATIVE=0 it runs the sources."""
    manifest = json.loads((native.BUILD / "manifest.json").read_text())
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    files = {module: importlib.import_module(module).__file__ or "" for module in manifest["modules"]}
    expected = native.decide(native.BUILD, native.ROOT, os.environ.get("SWITCHYARD_NATIVE"), suffix)
    assert native.decision() == expected
    if expected[0]:
        assert all(path.endswith(suffix) and path.startswith(str(native.BUILD)) for path in files.values()), files
    else:
        assert all(path.endswith(".py") for path in files.values()), files


@pytest.mark.skipif(not built_here(), reason="no build (python scripts/build_native.py)")
def test_a_fresh_process_with_native_off_imports_every_module_from_its_source() -> None:
    manifest = json.loads((native.BUILD / "manifest.json").read_text())
    probe = "import importlib, sys\nfor m in sys.argv[1:]:\n    print(importlib.import_module(m).__file__)\n"
    out = subprocess.run(
        [sys.executable, "-c", probe, *manifest["modules"]],
        env={**os.environ, "SWITCHYARD_NATIVE": "0"},
        capture_output=True,
        text=True,
        check=True,
        cwd=native.ROOT,
    ).stdout.split()
    assert len(out) == len(manifest["modules"]) and all(path.endswith(".py") for path in out), out
