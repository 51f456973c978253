"""Every `kubernetes` client version we support talks to the simulated cluster the same way.

`.ci/run` installs the oldest and newest supported versions beside the venv (in
`$KUBECTL_MULTUS_CLIENTS/kubernetes-<version>`); the test runs `client_smoke.py` under each in
a subprocess, since one interpreter can import only one version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simcluster.cluster import Cluster
from tests.sim.conftest import sleeper_ds

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = Path(os.environ.get("KUBECTL_MULTUS_CLIENTS", ROOT / ".venv" / "clients"))
SUPPORTED = ("35.0.0", "36.0.3", "37.0.2")


def installed(version: str) -> Path | None:
    path = CLIENTS / f"kubernetes-{version}"
    return path if (path / "kubernetes").is_dir() else None


@pytest.mark.parametrize("version", SUPPORTED)
def test_client_version_lists_patches_and_execs(version: str, cluster: Cluster) -> None:
    where = installed(version)
    if where is None:
        message = f"kubernetes {version} is not installed in {CLIENTS} (bash .ci/run installs it)"
        if os.environ.get("KUBECTL_MULTUS_REQUIRE_CLIENTS"):
            pytest.fail(message)
        pytest.skip(message)
    cluster.add(sleeper_ds())
    cluster.sync()
    pod = next(p for p in cluster.store.list(cluster.kind("pods"), "kube-system") if p["spec"]["nodeName"] == "node-a")
    conf = cluster.node_root("node-a") / "etc/cni/net.d"
    (conf / "10-x.conflist").write_text('{"cniVersion": "1.0.0", "name": "x"}')
    env = {**os.environ, "PYTHONPATH": str(where)}
    proc = subprocess.run(
        [sys.executable, "-S", str(Path(__file__).with_name("client_smoke.py")), str(cluster.kubeconfig), pod["metadata"]["name"]],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["version"] == version
    assert got["nodes"] == ["node-a", "node-b"] and got["pods"] == [pod["metadata"]["name"]]
    assert got["cm"]["k"] == "v" and got["missing"] == 404
    assert json.loads(got["json"]["stdout"]) == {"cniVersion": "1.0.0", "name": "x"}  # not mangled into a repr
    assert got["json"]["status"] == {"metadata": {}, "status": "Success"}
    fail = got["fail"]
    assert (fail["stdout"], fail["stderr"]) == ("out\n", "err\n")
    assert fail["status"]["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert got["stdin"]["status"]["status"] == "Success"
    assert (conf / "written").read_text() == "hello\n"
