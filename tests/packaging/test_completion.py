"""`kubectl multus <TAB>`: kubectl runs kubectl_complete-multus; the plugin answers as Cobra does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from kubectl_multus.cli import app
from tests.packaging.conftest import ROOT, kubectl_or_skip

SHIM = ROOT / "scripts" / "kubectl_complete-multus"
TIMEOUT = 30


def commands() -> set[str]:
    group = typer.main.get_command(app)
    return {name for name, cmd in group.commands.items() if not cmd.hidden}  # type: ignore[attr-defined]


def installed(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip(f"{name} is not installed in this environment (pip install -e '.[test]')")
    return found


@pytest.fixture
def kubectl_env(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """PATH: the plugin (this venv's console script) and a copy of the archive's shim, then kubectl."""
    kubectl = kubectl_or_skip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl-multus").symlink_to(installed("kubectl-multus"))
    shutil.copy2(SHIM, bin_dir)
    (tmp_path / "home").mkdir()
    env = {"PATH": f"{bin_dir}{os.pathsep}{Path(kubectl).parent}", "HOME": str(tmp_path / "home")}
    return kubectl, env


def complete(kubectl_env: tuple[str, dict[str, str]], *words: str, **env: str) -> list[str]:
    """`kubectl __complete multus WORDS...` (what kubectl's shell completion script runs)."""
    kubectl, base = kubectl_env
    done = subprocess.run(
        [kubectl, "__complete", "multus", *words],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def values(lines: list[str]) -> list[str]:
    return [line.split("\t")[0] for line in lines[:-1]]


def test_kubectl_multus_tab_lists_the_commands(kubectl_env: tuple[str, dict[str, str]]) -> None:
    lines = complete(kubectl_env, "")
    assert set(values(lines)) == commands() and "diagnose" in commands()
    assert lines[-1] == ":4"  # no file names
    assert all("\t" in line for line in lines[:-1])  # with a description each


def test_words_before_the_cursor_are_kept(kubectl_env: tuple[str, dict[str, str]]) -> None:
    assert values(complete(kubectl_env, "show")) == ["show-paths"]
    assert set(values(complete(kubectl_env, "diagnose", "--n"))) == {"--namespace", "--node"}
    assert values(complete(kubectl_env, "--context", "x", "diagnose", "-o", "")) == ["table", "wide", "json", "yaml"]
    assert values(complete(kubectl_env, "diagnose", "--helpers", "a")) == ["auto", "always"]


def test_paths_are_left_to_the_shell(kubectl_env: tuple[str, dict[str, str]]) -> None:
    assert complete(kubectl_env, "diagnose", "--from-dump", "") == [":16"]  # directories
    assert complete(kubectl_env, "dump", "") == [":16"]
    assert complete(kubectl_env, "diagnose", "--kubeconfig", "") == [":0"]  # files


def test_context_values_come_from_the_kubeconfig(kubectl_env: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in ("prod", "staging")],
        "current-context": "prod",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    assert values(complete(kubectl_env, "diagnose", "--context", "", KUBECONFIG=str(path))) == ["prod", "staging"]
    assert values(complete(kubectl_env, "--kubeconfig", str(path), "fix", "--context", "st")) == ["staging"]


def test_node_values_come_from_the_cluster(kubectl_env: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    from tests.e2e.conftest import EXAMPLES, sim_from

    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path) as sim:
        nodes = values(complete(kubectl_env, "diagnose", "--kubeconfig", str(sim.kubeconfig), "--node", ""))
    assert nodes == ["k3s-1", "k3s-2", "k3s-3"]


def test_an_unreachable_cluster_gives_no_node_candidates(
    kubectl_env: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    assert complete(kubectl_env, "diagnose", "--node", "", KUBECONFIG=str(config)) == [":4"]


def test_console_script_answers_without_kubectl() -> None:
    """pip installs `kubectl_complete-multus` as a console script; it answers on its own."""
    done = subprocess.run(
        [installed("kubectl_complete-multus"), "diagnose", "-o", "j"], capture_output=True, text=True, check=False
    )
    assert done.stdout == "json\n:4\n", done.stderr
