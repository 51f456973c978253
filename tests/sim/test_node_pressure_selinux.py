"""The kubelet's OOM kill and SELinux-enforcing nodes in the simulated cluster: what a Multus pod
shows when the kernel kills it, and what an unprivileged installer can do on a confined node."""

from __future__ import annotations

import copy
from typing import Any

from simcluster.cluster import Cluster
from tests.sim.conftest import sleeper_ds


def plugins_ds(privileged: bool) -> dict[str, Any]:
    """A DaemonSet with RKE2's cni-plugins init container (rancher/hardened-cni-plugins)."""
    ds = sleeper_ds("plugins")
    spec = ds["spec"]["template"]["spec"]
    spec["volumes"].append({"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}})
    init: dict[str, Any] = {
        "name": "cni-plugins",
        "image": "rancher/hardened-cni-plugins:v1.9.1-build20260819",
        "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
    }
    if privileged:
        init["securityContext"] = {"privileged": True}
    spec["initContainers"] = [init]
    return ds


def pods(cluster: Cluster, app: str) -> dict[str, dict[str, Any]]:
    return {
        p["spec"]["nodeName"]: p
        for p in cluster.store.list(cluster.kind("pods"), "kube-system")
        if p["metadata"]["labels"].get("app") == app
    }


def test_cni_plugins_installer_skips_a_confined_write_on_an_selinux_node(cluster: Cluster, core: Any) -> None:
    cluster.faults.selinux_enforcing = {"node-a"}
    cluster.add(plugins_ds(privileged=False))
    cluster.sync()
    by_node = pods(cluster, "plugins")
    for node in ("node-a", "node-b"):
        init = by_node[node]["status"]["initContainerStatuses"][0]
        assert init["state"]["terminated"]["exitCode"] == 0, node  # exits 0 either way
        assert by_node[node]["status"]["phase"] == "Running"
    log_a = core.read_namespaced_pod_log(by_node["node-a"]["metadata"]["name"], "kube-system", container="cni-plugins")
    assert log_a.strip() == "/host/opt/cni/bin is non-writeable, skipping"
    assert not (cluster.node_root("node-a") / "opt/cni/bin/macvlan").exists()
    assert (cluster.node_root("node-b") / "opt/cni/bin/macvlan").exists()  # not enforcing: installed


def test_privileged_installer_runs_unconfined_and_installs(cluster: Cluster, core: Any) -> None:
    cluster.faults.selinux_enforcing = {"node-a", "node-b"}
    cluster.add(plugins_ds(privileged=True))
    cluster.sync()
    pod = pods(cluster, "plugins")["node-a"]
    log = core.read_namespaced_pod_log(pod["metadata"]["name"], "kube-system", container="cni-plugins")
    assert "non-writeable" not in log and (cluster.node_root("node-a") / "opt/cni/bin/macvlan").exists()


def test_selinux_label_of_its_own_also_lets_it_write(cluster: Cluster) -> None:
    cluster.faults.selinux_enforcing = {"node-a"}
    ds = plugins_ds(privileged=False)
    ds["spec"]["template"]["spec"]["initContainers"][0]["securityContext"] = {"seLinuxOptions": {"type": "spc_t"}}
    cluster.add(ds)
    cluster.sync()
    assert (cluster.node_root("node-a") / "opt/cni/bin/macvlan").exists()


def test_oom_kill_shows_oomkilled_and_the_container_restarts_after_back_off(cluster: Cluster, core: Any) -> None:
    cluster.add(copy.deepcopy(sleeper_ds()))
    cluster.sync()
    cluster.kubelet.oom_kill("node-a", "main")
    pod = pods(cluster, "sleeper")["node-a"]
    status = pod["status"]["containerStatuses"][0]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    other = pods(cluster, "sleeper")["node-b"]["status"]["containerStatuses"][0]
    assert other["state"].get("running") and not other["lastState"]  # only the node named
    cluster.advance(11)
    status = pods(cluster, "sleeper")["node-a"]["status"]["containerStatuses"][0]
    assert status["state"].get("running") and status["restartCount"] == 1
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"  # as the kubelet keeps it


def test_thin_entrypoint_in_the_upstream_thick_image_is_a_start_error(cluster: Cluster) -> None:
    """images/Dockerfile.thick copies only /usr/src/multus-cni/bin: no /thin_entrypoint at the root."""
    ds = sleeper_ds("thin-in-thick")
    main = ds["spec"]["template"]["spec"]["containers"][0]
    main.update(image="ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0-thick", command=["/thin_entrypoint"])
    cluster.add(ds)
    cluster.sync()
    status = pods(cluster, "thin-in-thick")["node-a"]["status"]["containerStatuses"][0]
    last = status["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (128, "StartError")
    assert 'exec: "/thin_entrypoint": stat /thin_entrypoint: no such file or directory' in last["message"]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"


def test_thin_image_has_the_thin_entrypoint_and_the_daemon(cluster: Cluster) -> None:
    for name, command in (("thin", ["/thin_entrypoint"]), ("daemon", ["/usr/src/multus-cni/bin/multus-daemon"])):
        ds = sleeper_ds(name)
        main = ds["spec"]["template"]["spec"]["containers"][0]
        main.update(image="ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0", command=command)
        cluster.add(ds)
    cluster.sync()
    for name in ("thin", "daemon"):
        status = pods(cluster, name)["node-a"]["status"]["containerStatuses"][0]
        assert (status.get("lastState") or {}).get("terminated", {}).get("reason") != "StartError", name
