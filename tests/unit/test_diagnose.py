"""Diagnose end to end over built snapshots: layouts no fixture covers."""

from __future__ import annotations

import json

import yaml

from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.planner import build_plan
from kubectl_multus.core.snapshot import Entry, NodeFiles, Snapshot
from tests import scenarios as sc

OVN = {"cniVersion": "0.4.0", "name": "ovn-kubernetes", "type": "ovn-k8s-cni-overlay"}


def openshift_like() -> Snapshot:
    """The OpenShift network operator's thick layout (facts from its bindata), on a node where
    /var/run is a link to /run as on RHCOS."""
    mounts = [
        ("system-cni-dir", "/etc/kubernetes/cni/net.d", "/host/etc/cni/net.d"),
        ("multus-cni-dir", "/var/run/multus/cni/net.d", "/host/run/multus/cni/net.d"),
        ("cnibin", "/var/lib/cni/bin", "/host/opt/cni/bin"),
        ("host-run-multus", "/run/multus", "/host/run/multus"),
        ("hostroot", "/", "/hostroot"),
    ]
    main = {
        "name": "kube-multus",
        "image": "quay.io/openshift/origin-multus-cni:4.17",
        "command": ["/bin/bash", "-ec", "exec /usr/src/multus-cni/bin/multus-daemon"],
        "volumeMounts": [{"name": n, "mountPath": m} for n, _, m in mounts]
        + [
            {"name": "cnibin", "mountPath": "/var/lib/cni/bin"},
            {"name": "config", "mountPath": "/etc/cni/net.d/multus.d", "readOnly": True},
        ],
    }
    volumes = [{"name": n, "hostPath": {"path": h}} for n, h, _ in mounts] + [
        {"name": "config", "configMap": {"name": "multus-daemon-config"}}
    ]
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "multus", "namespace": "openshift-multus"},
        "spec": {
            "selector": {"matchLabels": {"app": "multus"}},
            "template": {"spec": {"containers": [main], "volumes": volumes}},
        },
    }
    conf = {
        "chrootDir": "/hostroot",
        "binDir": "/var/lib/cni/bin",
        "cniConfigDir": "/host/etc/cni/net.d",
        "multusAutoconfigDir": "/host/run/multus/cni/net.d",
        "multusConfigFile": "auto",
        "readinessindicatorfile": "/host/run/multus/cni/net.d/10-ovn-kubernetes.conf",
        "daemonSocketDir": "/run/multus/socket",
        "socketDir": "/host/run/multus/socket",
        "cniVersion": "0.3.1",
    }
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "multus-daemon-config", "namespace": "openshift-multus"},
        "data": {"daemon-config.json": json.dumps(conf, indent=2)},
    }
    node = sc.node("master-0", "kubeadm")
    node["metadata"]["labels"]["node.openshift.io/os_id"] = "rhcos"
    files = sc.node_files(
        {
            "/run/multus/cni/net.d/10-ovn-kubernetes.conf": json.dumps(OVN),
            "/etc/kubernetes/cni/net.d/00-multus.conf": json.dumps({"type": "multus-shim"}),
            "/var/lib/cni/bin/multus-shim": None,
            "/var/lib/cni/bin/ovn-k8s-cni-overlay": None,
        },
        dirs=["/run/multus/socket"],
    )
    files = NodeFiles({**files.entries, "/var": Entry("dir"), "/var/run": Entry("link", target="/run")})
    return Snapshot("openshift", nodes=(node,), daemonsets=(ds,), configmaps=(cm,), node_files={"master-0": files})


def _upstream_thin_ds() -> dict:
    doc = yaml.safe_load((sc.REPO / "examples/k3s-upstream-thin-unchanged/objects/daemonsets.yaml").read_text())
    return doc["items"][0]


def test_openshift_thick_layout_is_healthy():
    report = diagnose(openshift_like())
    assert report.installs[0].nodes[0].distribution == "openshift"
    assert report.healthy, [(f.code, f.field, f.message) for f in report.findings]


def test_openshift_host_path_in_cniconfigdir_is_caught():
    snap = openshift_like()
    cm = json.loads(snap.configmaps[0]["data"]["daemon-config.json"])
    cm["cniConfigDir"] = "/etc/kubernetes/cni/net.d"
    snap.configmaps[0]["data"]["daemon-config.json"] = json.dumps(cm)
    f = next(f for f in diagnose(snap).findings if f.field == "daemon-config cniConfigDir")
    assert (f.code, f.expected) == ("M102", "/host/etc/cni/net.d")


def test_k3s_custom_data_dir_from_node_args():
    ds = _upstream_thin_ds()
    node = sc.node("edge-1", "k3s")
    node["metadata"]["annotations"] = {"k3s.io/node-args": json.dumps(["server", "--data-dir", "/srv/k3s"])}
    report = diagnose(Snapshot("custom", nodes=(node,), daemonsets=(ds,)))
    by_field = {f.field: f for f in report.findings}
    assert by_field["volume cni hostPath"].expected == "/srv/k3s/agent/etc/cni/net.d"
    assert by_field["volume cnibin hostPath"].expected == "/srv/k3s/data/cni"


def test_nodes_of_two_distributions_under_one_daemonset_conflict():
    """One DaemonSet cannot carry k3s and kubeadm hostPaths at once: the plan says so instead of choosing."""
    ds = _upstream_thin_ds()
    snap = Snapshot("mixed", nodes=(sc.node("k3s-1", "k3s"), sc.node("kubeadm-1", "kubeadm")), daemonsets=(ds,))
    report = diagnose(snap)
    cni = next(f for f in report.findings if f.field == "volume cni hostPath")
    assert cni.nodes == ("k3s-1",)
    plan = build_plan(report, snap)
    # k3s-1 needs the k3s dir, kubeadm-1 works with /etc/cni/net.d: no single value serves both
    assert any("ds.volume.cni.hostPath" in c and "kubeadm-1" in c for c in plan.conflicts)
    assert not any(c.key == "ds.volume.cni.hostPath" for c in plan.changes)
    # ... and where both need a change, but different ones, that is a conflict too
    ds2 = json.loads(json.dumps(ds))
    ds2["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] = "/etc/cni/other"
    both = Snapshot("mixed", nodes=(sc.node("k3s-1", "k3s"), sc.node("kubeadm-2", "kubeadm")), daemonsets=(ds2,))
    plan = build_plan(diagnose(both), both)
    assert any("ds.volume.cni.hostPath" in c for c in plan.conflicts)
    assert not any(c.key == "ds.volume.cni.hostPath" for c in plan.changes)


BOOT_RACE = (
    "2026-12-02T07:59:01Z [error] failed to find the primary CNI plugin: failed to find the cluster master CNI "
    "plugin: could not find a plugin configuration in /host/etc/cni/net.d"
)


def _restarted_once(current_log: str) -> Snapshot:
    """kubeadm-healthy where worker-1's Multus started before flannel at boot: the daemon gave up
    waiting for a primary config (exit 2), the kubelet restarted it, and the pod is Running and Ready."""
    from kubectl_multus.adapters.dumpdir import load

    snap = load(str(sc.REPO / "examples/kubeadm-healthy"))
    pods = []
    for p in snap.pods:
        if p["metadata"]["name"].endswith("-worker-1"):
            p = json.loads(json.dumps(p))
            for s in p["status"]["containerStatuses"]:
                s["restartCount"] = 1
                s["lastState"] = {"terminated": {"exitCode": 2, "reason": "Error"}}
        pods.append(p)
    logs = dict(snap.logs)
    logs[("kube-system", "kube-multus-ds-worker-1", "kube-multus", True)] = BOOT_RACE
    logs[("kube-system", "kube-multus-ds-worker-1", "kube-multus", False)] = current_log
    return Snapshot(snap.source, snap.nodes, snap.daemonsets, snap.configmaps, tuple(pods), snap.others, logs,
                    snap.node_files)  # fmt: skip


def test_a_startup_error_the_ready_pod_got_past_is_not_reported():
    current = (
        "2026-12-02T08:00:01Z [verbose] multus-daemon started\n"
        '2026-12-02T08:00:02Z [verbose] Generated MultusCNI config: {"type":"multus-shim"}\n'
    )
    report = diagnose(_restarted_once(current))
    assert report.healthy, [(f.code, f.field, f.message) for f in report.findings]


def test_a_startup_error_is_still_reported_while_the_current_run_has_not_got_past_startup():
    report = diagnose(_restarted_once("2026-12-02T08:00:01Z [verbose] multus-daemon started\n"))
    assert [f.code for f in report.findings if f.severity.name != "INFO"] == ["M202"]
