"""Upstream manifests (shared/fixtures/upstream) on the distributions in the fixtures README:
no false alarm on a correct install, and the right volumes at fault where the dirs differ."""

from __future__ import annotations

import pytest

from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.findings import Severity
from kubectl_multus.core.planner import build_plan
from tests import scenarios as sc

MC = "k8snetworkplumbingwg-multus-cni"
HEALTHY = [
    (f"{MC}/multus-daemonset.yml", "kubeadm"),
    (f"{MC}/multus-daemonset.yml", "kind"),
    (f"{MC}/multus-daemonset-thick.yml", "kubeadm"),
    (f"{MC}/multus-daemonset-thick.yml", "kind"),
    (f"{MC}/multus-daemonset.v4.3.0.yml", "kubeadm"),
    (f"{MC}/multus-daemonset-thick.v4.3.0.yml", "kubeadm"),
    (f"{MC}/multus-daemonset-thick.v4.0.2.yml", "kubeadm"),
    (f"{MC}/multus-daemonset-crio.yml", "crio"),
    ("canonical-microk8s-community-addons/multus.yaml", "microk8s"),
]
K3S_DIRS = {
    "volume cni hostPath": "/var/lib/rancher/k3s/agent/etc/cni/net.d",
    "volume cnibin hostPath": "/var/lib/rancher/k3s/data/cni",
}


def _objects(shared, path):
    text = (shared / "upstream" / path).read_text()
    if "microk8s" in path:
        text = text.replace("$SNAP_DATA", "/var/snap/microk8s/current")  # what the addon's enable script does
    import yaml

    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize(("path", "distro"), HEALTHY, ids=[f"{p.split('/')[-1]}-{d}" for p, d in HEALTHY])
def test_upstream_manifest_is_healthy_where_it_belongs(shared, path, distro):
    report = diagnose(sc.manifest_snapshot(_objects(shared, path), distro, nodes=2))
    problems = [(f.code, f.field, f.message) for f in report.findings if f.severity > Severity.INFO]
    assert report.healthy, problems
    assert {f.code for f in report.findings} <= {"M301"}


@pytest.mark.parametrize("path", [f"{MC}/multus-daemonset.yml", f"{MC}/multus-daemonset-thick.yml"])
def test_upstream_manifest_on_k3s_names_the_hostpaths(shared, path):
    report = diagnose(sc.manifest_snapshot(_objects(shared, path), "k3s"))
    assert not report.healthy
    by_field = {f.field: f for f in report.findings}
    for field, expected in K3S_DIRS.items():
        assert by_field[field].expected == expected
        assert by_field[field].code in ("M107", "M108")
    plan = build_plan(report, sc.manifest_snapshot(_objects(shared, path), "k3s"))
    keys = {c.key: c.value for c in plan.changes}
    assert keys["ds.volume.cni.hostPath"] == K3S_DIRS["volume cni hostPath"]
    assert keys["ds.volume.cnibin.hostPath"] == K3S_DIRS["volume cnibin hostPath"]
    if "thick" in path:
        # once the bin dir moves, binDir (and its mount, under chroot) must follow
        assert keys["daemon_config.binDir"] == "/var/lib/rancher/k3s/data/cni"
        assert keys["ds.mount.cnibin.mountPath"] == "/var/lib/rancher/k3s/data/cni"
    else:
        assert keys["ds.arg.--multus-kubeconfig-file-host"] == (
            "/var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/multus.kubeconfig"
        )
