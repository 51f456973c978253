"""The krew archive: built once per session, installed the way krew installs it, run through the
real kubectl in a clean environment (empty HOME, no venv, no PYTHONPATH)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubectl_multus import __version__
from tests.packaging import krew
from tests.packaging.conftest import MOTIVATING, ROOT, Release, base_python, clean_env, kubectl_or_skip

TIMEOUT = 60


@dataclass(frozen=True)
class Installed:
    link: Path  # bin/kubectl-multus, a symlink into the store, as krew makes it
    store: Path  # store/multus/v<version>
    env: dict[str, str]
    kubectl: str


@pytest.fixture(scope="module")
def installed(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    kubectl = kubectl_or_skip()
    root = tmp_path_factory.mktemp("krew")
    link = krew.install(release.manifest, release.archive, root / "krew-root")
    store = root / "krew-root" / "store" / "multus" / f"v{__version__}"
    yield Installed(link, store, clean_env(root / "home", link.parent, kubectl), kubectl)


def run(inst: Installed, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [inst.kubectl, *args], capture_output=True, text=True, env=env or inst.env, timeout=TIMEOUT, check=False
    )


def store_files(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in store.rglob("*")}


def test_archive_holds_regular_files_only_and_no_native_code(release: Release) -> None:
    with tarfile.open(release.archive) as tar:
        members = tar.getmembers()
    assert all(m.isreg() or m.isdir() for m in members), [m.name for m in members if not (m.isreg() or m.isdir())]
    names = {m.name for m in members}
    native = sorted(n for n in names if n.endswith((".so", ".pyd", ".dylib")))
    assert native == []  # one archive for every OS and CPU: pure Python only
    assert not any(
        n.startswith(("pkg/pydantic", "pkg/pydantic_core", "pkg/kubernetes/aio", "pkg/rich/")) for n in names
    )
    modes = {m.name: m.mode for m in members}
    assert modes["kubectl-multus"] == modes["kubectl_complete-multus"] == 0o755
    top = {n.split("/")[0] for n in names}
    assert top == {f["from"] for f in release.manifest["spec"]["platforms"][0]["files"]}  # nothing left behind


def test_archive_carries_the_license_and_pinned_pure_python_clients(release: Release, tmp_path: Path) -> None:
    with tarfile.open(release.archive) as tar:
        license_file = tar.extractfile("LICENSE")
        assert license_file is not None and license_file.read() == (ROOT / "LICENSE").read_bytes()
        names = tar.getnames()
    assert "pkg/kubernetes-36.0.3.dist-info/METADATA" in names  # kubernetes 37 needs pydantic-core
    assert "pkg/typer-0.28.0.dist-info/METADATA" in names  # typer 0.29 too
    # bytecode that is never re-validated: krew does not keep file times
    pycs = [n for n in names if n.endswith(".pyc")]
    assert pycs and all(".cpython-" in n for n in pycs)


def test_built_manifest_describes_the_archive(release: Release) -> None:
    assert krew.problems(release.manifest, "multus") == []
    (platform,) = release.manifest["spec"]["platforms"]
    assert platform["sha256"] == hashlib.sha256(release.archive.read_bytes()).hexdigest()
    assert platform["uri"].endswith("/" + release.archive.name)
    assert release.archive.name == f"kubectl-multus-v{__version__}.tar.gz"


def test_installed_like_krew_kubectl_lists_and_runs_it(installed: Installed) -> None:
    assert installed.link.is_symlink() and krew.licenses(installed.store) == ["LICENSE"]
    listed = run(installed, "plugin", "list")
    assert str(installed.link) in listed.stdout, listed.stdout + listed.stderr
    version = run(installed, "multus", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"kubectl-multus {__version__}", version.stderr
    diagnosed = run(installed, "multus", "diagnose", "--from-dump", str(MOTIVATING))
    assert diagnosed.returncode == 1, diagnosed.stderr
    assert "prefix applied twice" in diagnosed.stdout


def test_installed_archive_diagnoses_a_live_cluster(installed: Installed, tmp_path: Path) -> None:
    """The vendored kubernetes client (36, pure Python) over HTTP and exec over WebSocket, against
    the simulated cluster: the crash-looping node is read through a helper pod."""
    from tests.e2e.conftest import sim_from

    with sim_from(MOTIVATING, tmp_path) as sim:
        done = run(installed, "multus", "diagnose", "--kubeconfig", str(sim.kubeconfig))
        made = [q for q in sim.requests if q.verb == "create" and q.resource == "pods"]
    assert done.returncode == 1, done.stderr
    assert "prefix applied twice" in done.stdout and len(made) == 1


def test_installed_archive_runs_from_its_precompiled_bytecode(installed: Installed) -> None:
    """Nothing is written into the store while running: the bytecode shipped is used as it is, so
    start-up does not depend on the store being writable."""
    before = store_files(installed.store)
    for args in (["multus", "--help"], ["multus", "show-paths", "--from-dump", str(MOTIVATING)]):
        assert run(installed, *args).returncode in (0, 1)
    assert store_files(installed.store) == before


def test_installed_archive_needs_no_site_packages(installed: Installed) -> None:
    done = subprocess.run(
        [str(base_python()), "-S", "-B", str(installed.link), "--version"],
        capture_output=True,
        text=True,
        env=installed.env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0 and __version__ in done.stdout, done.stderr


def test_completion_shim_copied_beside_the_plugin_answers_kubectl(installed: Installed, tmp_path: Path) -> None:
    """As the README and caveats say: copy kubectl_complete-multus from the store into krew's bin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(installed.link.resolve(), bin_dir / "kubectl-multus")
    shutil.copy2(installed.store / "kubectl_complete-multus", bin_dir)
    env = {**installed.env, "PATH": installed.env["PATH"].replace(str(installed.link.parent), str(bin_dir))}
    done = run(installed, "__complete", "multus", "", env=env)
    lines = done.stdout.splitlines()
    commands = {line.split("\t")[0] for line in lines[:-1]}
    assert {"diagnose", "show-paths", "fix", "dump"} <= commands, done.stdout + done.stderr
    assert lines[-1] == ":4"  # ShellCompDirectiveNoFileComp


def _old_python() -> str | None:
    """A Python older than 3.10 that really runs (pyenv shims exist for versions not enabled)."""
    names = [shutil.which(f"python3.{minor}") for minor in (9, 8, 7, 6)]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [*filter(None, names), *map(str, sorted(pyenv.glob("3.[6-9].*/bin/python3")))]
    for candidate in candidates:
        check = [candidate, "-c", "import sys; sys.exit(sys.version_info >= (3, 10))"]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def test_python_older_than_3_10_gets_one_clear_line(installed: Installed) -> None:
    old = _old_python()
    if not old:
        pytest.skip("no Python older than 3.10 here to try the launcher's version check with")
    done = subprocess.run([old, str(installed.link), "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert done.stderr.startswith("kubectl multus: error: needs Python 3.10 or newer") and done.stderr.count("\n") == 1
