"""The installed command in its own process against a simulated cluster: through the real
kubectl, and interrupted mid-read (helper pods must never be left behind)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from simcluster.cluster import Cluster
from tests.e2e.conftest import EXAMPLES, helper_pods, sim_from
from tests.scenarios import installed_executable


def test_real_kubectl_runs_the_plugin_against_a_live_cluster(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (CI has it)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl-multus").symlink_to(installed_executable())
    env = {"PATH": f"{bindir}:{Path(kubectl).parent}", "HOME": str(tmp_path), "NO_COLOR": "1"}
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        r = subprocess.run(
            [kubectl, "multus", "diagnose", "--kubeconfig", str(sim.kubeconfig)],
            capture_output=True, text=True, env=env, check=False, timeout=60,
        )  # fmt: skip
        assert r.returncode == 1, r.stderr
        assert "prefix applied twice" in r.stdout and "cni-conf-dir is not found" in r.stdout
        assert helper_pods(sim) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_while_a_helper_pod_waits_removes_it(sig: signal.Signals, tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        sim.faults.helper_never_starts = True  # the CLI waits for it: a window to interrupt in
        proc = subprocess.Popen(
            [installed_executable(), "diagnose", "--kubeconfig", str(sim.kubeconfig)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not helper_pods(sim):
                assert proc.poll() is None and time.monotonic() < deadline, "no helper pod was created"
                time.sleep(0.05)
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, err
        assert err.splitlines()[-1] == "kubectl multus: interrupted", err
        assert helper_pods(sim) == []


def test_helper_pod_manifest_is_a_valid_pod() -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="a test dependency: pip install -e '.[test]'"
    )
    from kubectl_multus.core.capture import helper_pod

    pod = helper_pod(
        "node-1",
        "kube-system",
        "docker.io/library/busybox:1.36.1",
        ["/etc/cni/net.d", "/opt/cni/bin"],
        deadline=300,
        known=["/opt/cni/bin"],
    )
    pod["metadata"]["name"] = "kubectl-multus-node-1-abcde"  # generateName is filled in by the server
    kubernetes_validate.validate(pod, "1.31", strict=True)
    volumes = {v["hostPath"]["path"]: v["hostPath"]["type"] for v in pod["spec"]["volumes"]}
    assert volumes == {"/etc": "Directory", "/opt": "Directory"}
    assert all(m["readOnly"] for m in pod["spec"]["containers"][0]["volumeMounts"])


def test_helper_skips_a_top_directory_the_node_may_lack() -> None:
    from kubectl_multus.core.capture import helper_volumes

    assert helper_volumes(["/opt/cni/bin", "/etc/cni/net.d"]) == ["/etc"]  # /opt unknown: not mounted
    assert helper_volumes(["/opt/cni/bin"], known=["/opt/cni/bin"]) == ["/opt"]


def test_helper_mounts_the_top_of_the_distribution_s_own_dirs() -> None:
    """A k3s --data-dir outside /var (or GKE's /home/kubernetes) exists whatever Multus mounts."""
    from kubectl_multus.core.capture import helper_volumes
    from kubectl_multus.core.distros import TABLE, detect

    k3s_node = {
        "metadata": {"name": "n", "annotations": {"k3s.io/node-args": '["server", "--data-dir", "/srv/k3s"]'}},
        "status": {"nodeInfo": {"kubeletVersion": "v1.31.4+k3s1"}},
    }
    distro = detect(k3s_node)[0]
    assert distro.own_dirs == ("/srv/k3s",) and TABLE["gke"].own_dirs == ("/home/kubernetes",)
    roots = [distro.conf_dir, "/etc/cni/net.d", "/home/kubernetes/bin"]
    assert helper_volumes(roots) == ["/etc"]
    assert helper_volumes(roots, known=[*distro.own_dirs, *TABLE["gke"].own_dirs]) == ["/etc", "/home", "/srv"]


def test_cleanup_tolerates_an_already_deleted_pod(tmp_path: Path) -> None:
    sim = Cluster(tmp_path / "sim")
    with sim:
        from kubectl_multus.adapters import helperpod, kubeconn

        conn = kubeconn.resolve(str(sim.kubeconfig), None, "5s")
        pods = helperpod.HelperPods(lambda: kubeconn.new_client(conn), conn.timeout)
        client = kubeconn.new_client(conn)
        pods.delete(client, "kube-system", "gone-already")  # 404 is fine
        client.close()
        assert pods.close() == []
