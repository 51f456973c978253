"""pip and pipx: the wheel and the sdist build, carry the metadata, the license and both commands."""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from kubectl_multus import __version__
from tests.packaging.conftest import MOTIVATING, ROOT
from tests.packaging.test_manifest import pyproject


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sdist, then the wheel built from it (what `python -m build` does), from a copy of the
    sources: a build writes egg-info and build/ beside them, and the checkout is shared."""
    pytest.importorskip("build", reason="a test dependency: pip install -e '.[test]'")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "kubectl_multus", src / "kubectl_multus", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Deprecat" not in done.stdout + done.stderr  # setuptools' license deprecations are now errors to come
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


def test_wheel_metadata_is_complete(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as whl:
        info = f"kubectl_multus-{__version__}.dist-info"
        metadata = email.parser.Parser().parsestr(whl.read(f"{info}/METADATA").decode())
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
        assert whl.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert metadata["Name"] == "kubectl-multus" and metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0" and metadata["Summary"]
    home = pyproject()["project"]["urls"]["Homepage"]
    assert f"Homepage, {home}" in metadata.get_all("Project-URL", [])
    assert "Programming Language :: Python :: 3.10" in metadata.get_all("Classifier", [])
    assert "kubectl-multus = kubectl_multus.__main__:main" in entry_points
    assert "kubectl_complete-multus = kubectl_multus.completion:main" in entry_points


def test_sdist_carries_the_license(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as sdist:
        names = sdist.getnames()
    assert f"kubectl_multus-{__version__}/LICENSE" in names
    assert f"kubectl_multus-{__version__}/kubectl_multus/completion.py" in names


def test_installed_wheel_gives_both_commands(dists: dict[str, Path], tmp_path: Path) -> None:
    """The console scripts pip writes: kubectl-multus, and the completion kubectl looks for."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(dists["wheel"])],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "NO_COLOR": "1"}  # dependencies: this venv's
    diagnosed = subprocess.run(
        [str(target / "bin" / "kubectl-multus"), "diagnose", "--from-dump", str(MOTIVATING)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert diagnosed.returncode == 1 and "prefix applied twice" in diagnosed.stdout, diagnosed.stderr
    completed = subprocess.run(
        [str(target / "bin" / "kubectl_complete-multus"), "diag"], capture_output=True, text=True, env=env, check=False
    )
    assert completed.stdout.splitlines()[0].startswith("diagnose\t") and completed.stdout.endswith(":4\n")
