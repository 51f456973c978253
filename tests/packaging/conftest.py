"""The release build, once per session, and a clean environment to run what it produced."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MOTIVATING = ROOT / "examples" / "k3s-thin-doubled-prefix"


def _load_build_release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_release", ROOT / "scripts" / "build-release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_release = _load_build_release()


@dataclass(frozen=True)
class Release:
    archive: Path
    manifest_path: Path
    manifest: dict[str, Any]


@pytest.fixture(scope="session")
def release(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The krew archive and its manifest, built as a release is, with bytecode for this Python
    only (a release precompiles for 3.10 to 3.13) and fast compression. The pinned dependencies
    are downloaded once and kept in pytest's cache directory."""
    out = tmp_path_factory.mktemp("release")
    cache = getattr(request.config, "cache", None)
    vendor_cache = cache.mkdir("kubectl-multus-vendor") if cache is not None else None
    archive = build_release.build(out, [sys.executable], level=1, vendor_cache=vendor_cache)
    manifest_path = out / "plugin.yaml"
    return Release(archive, manifest_path, yaml.safe_load(manifest_path.read_text()))


def kubectl_or_skip() -> str:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (CI has it): the plugin is run through the real kubectl")
    return kubectl


def base_python() -> Path:
    """This venv's interpreter without the venv: the python3 a user has, with none of our packages."""
    return Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))


def clean_env(home: Path, bin_dir: Path, kubectl: str | None = None) -> dict[str, str]:
    """Empty HOME; PATH: bin_dir, a directory holding only python3 (the base interpreter), then
    kubectl's directory. Nothing of the repo or its venv, no PYTHONPATH."""
    python_dir = home.parent / "python-bin"
    if not python_dir.exists():
        python_dir.mkdir()
        (python_dir / "python3").symlink_to(base_python())
    home.mkdir(exist_ok=True)
    dirs = [bin_dir, python_dir, *([Path(kubectl).parent] if kubectl else [])]
    return {"PATH": os.pathsep.join(str(d) for d in dirs), "HOME": str(home), "NO_COLOR": "1", "LANG": "C.UTF-8"}
