"""What the simulated kubelet does when a container cannot start or outgrows its memory limit:
the statuses the real kubelet reports (field-13: OOMKilled; field-16: StartError)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from simcluster.cluster import Cluster
from simcluster.kubelet import memory_bytes
from simcluster.runtime import exec_error
from tests.sim.conftest import sleeper_ds

THIN = "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.0.2"
THICK = "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.0.2-thick"
CP_SHIM = ["cp", "/usr/src/multus-cni/bin/multus-shim", "/host/opt/cni/bin/multus-shim"]


def pod_of(sim: Cluster, ds: str) -> dict[str, Any]:
    pods = [
        p
        for p in sim.store.list(sim.kind("pods"), "kube-system")
        if p["metadata"]["labels"].get("app") == ds and p["spec"]["nodeName"] == "node-a"
    ]
    assert len(pods) == 1
    return pods[0]


def limited(memory: str) -> dict[str, Any]:
    ds = sleeper_ds("limited")
    ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "100m", "memory": memory},
        "requests": {"cpu": "100m", "memory": memory},
    }
    return ds


def with_init(image: str, command: list[str]) -> dict[str, Any]:
    ds = sleeper_ds("init")
    spec = ds["spec"]["template"]["spec"]
    spec["initContainers"] = [
        {
            "name": "install-multus-binary",
            "image": image,
            "command": command,
            "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
        }
    ]
    spec["volumes"].append({"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}})
    return ds


@pytest.mark.parametrize("used", ["53Mi", "55574528"])
def test_container_over_its_memory_limit_is_oom_killed_and_backs_off(cluster: Cluster, used: str) -> None:
    cluster.faults.memory_use["main"] = used
    cluster.add(limited("50Mi"))
    cluster.sync()  # the DaemonSet controller creates the pod now
    cluster.advance(45)
    status = pod_of(cluster, "limited")["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["restartCount"] == 2  # started at 0 s, 10 s, 30 s; the next start is due at 70 s
    assert status["ready"] is False


@pytest.mark.parametrize(("limit", "used"), [("64Mi", "53Mi"), ("50Mi", None), ("1Gi", "53Mi")])
def test_container_within_its_memory_limit_runs(cluster: Cluster, limit: str, used: str | None) -> None:
    if used is not None:
        cluster.faults.memory_use["main"] = used
    cluster.add(limited(limit))
    cluster.sync()
    cluster.advance(45)
    status = pod_of(cluster, "limited")["status"]["containerStatuses"][0]
    assert "running" in status["state"] and status["restartCount"] == 0 and status["lastState"] == {}


def test_raising_the_limit_stops_the_oom_kills(cluster: Cluster) -> None:
    cluster.faults.memory_use["main"] = "53Mi"
    ds = cluster.add(limited("50Mi"))
    cluster.sync()
    cluster.advance(45)
    fixed = copy.deepcopy(ds)
    for key in ("limits", "requests"):
        fixed["spec"]["template"]["spec"]["containers"][0]["resources"][key]["memory"] = "200Mi"
    cluster.store.replace(cluster.kind("daemonsets", "apps"), fixed)
    cluster.advance(5)  # the DaemonSet controller replaces the pod
    status = pod_of(cluster, "limited")["status"]["containerStatuses"][0]
    assert "running" in status["state"] and status["restartCount"] == 0


def test_memory_quantities() -> None:
    assert memory_bytes("50Mi") == 50 * 2**20
    assert memory_bytes("128M") == 128e6
    assert memory_bytes("1Gi") > memory_bytes("1000Mi") > memory_bytes("1G")
    with pytest.raises(ValueError):
        memory_bytes("fifty")


def test_command_missing_from_a_distroless_image_is_a_start_error(cluster: Cluster) -> None:
    """field-16: the thin image has no `cp`; runc fails, the kubelet reports StartError (128)
    and backs off, and the pod never gets past its init container."""
    cluster.add(with_init(THIN, CP_SHIM))
    cluster.sync()
    cluster.advance(45)
    status = pod_of(cluster, "init")["status"]
    init = status["initContainerStatuses"][0]
    assert init["lastState"]["terminated"]["reason"] == "StartError"
    assert init["lastState"]["terminated"]["exitCode"] == 128
    assert 'exec: "cp": executable file not found in $PATH: unknown' in init["lastState"]["terminated"]["message"]
    assert init["state"]["waiting"]["reason"] == "CrashLoopBackOff" and init["restartCount"] == 2
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert status["phase"] == "Pending"
    assert not (cluster.node_root("node-a") / "opt/cni/bin/multus-shim").exists()


def test_same_command_in_the_thick_image_runs(cluster: Cluster) -> None:
    """The -thick image is Debian-based: its `cp` installs the shim and the pod starts."""
    cluster.add(with_init(THICK, CP_SHIM))
    cluster.sync()
    cluster.advance(5)
    status = pod_of(cluster, "init")["status"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert "running" in status["containerStatuses"][0]["state"]
    assert (cluster.node_root("node-a") / "opt/cni/bin/multus-shim").is_file()


@pytest.mark.parametrize(
    ("image", "command", "error"),
    [
        (THIN, ["/thin_entrypoint"], None),
        (THIN, ["/usr/src/multus-cni/bin/install_multus", "-t", "thick"], None),
        (THIN, [], None),  # the image's own entrypoint
        (THIN, ["/bin/sh", "-c", "cp a b"], 'exec: "/bin/sh": stat /bin/sh: no such file or directory'),
        (THIN, ["cp", "a", "b"], 'exec: "cp": executable file not found in $PATH'),
        (THICK, ["cp", "a", "b"], None),
        ("ghcr.io/k8snetworkplumbingwg/multus-cni:v3.9.3", ["/entrypoint.sh"], None),
        ("quay.io/openshift/origin-multus-cni:4.16", ["/bin/bash", "-c", "exec /entrypoint.sh"], None),
        ("busybox:1.36", ["sleep", "1"], None),
    ],
)
def test_exec_error_only_where_the_image_lacks_the_command(image: str, command: list[str], error: str | None) -> None:
    found = exec_error({"image": image, "command": command})
    if error is None:
        assert found is None
    else:
        assert found is not None and found.endswith(f"{error}: unknown") and "runc create failed" in found
