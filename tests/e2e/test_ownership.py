"""Objects another tool manages: fix warns, prints what makes the change last, and --persist
writes the HelmChartConfig the k3s/RKE2 Helm controller reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubectl_multus.core.findings import Change, Target
from kubectl_multus.core.install import find_installs
from kubectl_multus.core.ownership import chart_values, owner, persistent_change
from tests.e2e.conftest import EXAMPLES, cli, sim_from

KC = "--kubeconfig"


def helm_managed(sim: object, chart: bool) -> None:
    from simcluster.cluster import Cluster

    assert isinstance(sim, Cluster)
    ds = sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")
    ds["metadata"].setdefault("labels", {})["app.kubernetes.io/managed-by"] = "Helm"
    ds["metadata"].setdefault("annotations", {}).update(
        {"meta.helm.sh/release-name": "rke2-multus", "meta.helm.sh/release-namespace": "kube-system"}
    )
    if chart:  # as on k3s and RKE2: the chart, and both Helm controller CRDs
        from simcluster import api

        sim.add(
            {
                "apiVersion": "helm.cattle.io/v1",
                "kind": "HelmChart",
                "metadata": {"name": "rke2-multus", "namespace": "kube-system"},
                "spec": {"chart": "rke2-multus"},
            }
        )
        config = next(k for k in api.KNOWN_CUSTOM if k.kind == "HelmChartConfig")
        sim.store.create(sim.kind("customresourcedefinitions", "apiextensions.k8s.io"), api.crd_for(config))


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_helm_release_gets_a_helm_upgrade_line(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        helm_managed(sim, chart=False)
        r = cli("fix", KC, str(sim.kubeconfig), "--dry-run")
        assert r.exit_code == 1
        assert "managed by Helm release kube-system/rke2-multus" in r.stderr
        assert "helm upgrade rke2-multus <chart> -n kube-system --reuse-values" in r.stderr
        assert "--set config.cni_conf.confDir=/etc/cni/net.d" in r.stderr  # the chart adds /host itself


def test_helmchart_persist_writes_the_helmchartconfig(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        helm_managed(sim, chart=True)
        r = cli("fix", KC, str(sim.kubeconfig), "--yes", "--persist")
        assert r.exit_code == 0, r.stderr
        assert (
            "HelmChart kube-system/rke2-multus" in r.stderr
            and "wrote HelmChartConfig kube-system/rke2-multus" in r.stderr
        )
        hcc = sim.store.get(sim.kind("helmchartconfigs", "helm.cattle.io"), "kube-system", "rke2-multus")
        values = yaml.safe_load(hcc["spec"]["valuesContent"])
        assert (
            values["config"]["cni_conf"]["kubeconfig"]
            == "/var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/multus.kubeconfig"
        )


def test_openshift_is_operator_owned() -> None:
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "multus", "namespace": "openshift-multus"}}
    own = owner(ds)
    assert own is not None and own.kind == "operator"
    assert "network.operator.openshift.io/cluster" in persistent_change(own, {})


def test_chart_values_from_daemonset_changes() -> None:
    from kubectl_multus.adapters import dumpdir

    snap = dumpdir.load(str(EXAMPLES / "k3s-thin-doubled-prefix"))
    inst = find_installs(snap)[0]
    t = Target("DaemonSet", "kube-system", "kube-multus-ds")
    values = chart_values(
        inst,
        [
            Change(t, "ds.arg.--cni-conf-dir", "/host/var/lib/x/net.d"),
            Change(t, "daemon_config.binDir", "/opt/cni/bin"),
        ],
    )
    assert values["config.cni_conf.confDir"] == "/var/lib/x/net.d"
    assert values["config.daemon_conf.binDir"] == "/opt/cni/bin"


def test_rke2_builtin_plugin_installer_fix_warns_the_helm_controller_reverts_it(tmp_path: Path) -> None:
    """field-17: the privileged fix for RKE2's cni-plugins lands on its built-in chart's DaemonSet."""
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path / "sim") as sim:
        sim.faults.selinux_enforcing = {"control-plane", "worker-1", "worker-2"}
        kind = sim.kind("daemonsets", "apps")
        ds = sim.store.get(kind, "kube-system", "kube-multus-ds")
        ds = yaml.safe_load(yaml.safe_dump(ds))
        ds["spec"]["template"]["spec"]["initContainers"].append(
            {
                "name": "cni-plugins",
                "image": "rancher/hardened-cni-plugins:v1.9.1-build20260819",
                "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
            }
        )
        sim.store.replace(kind, ds)
        sim.sync()
        helm_managed(sim, chart=True)
        r = cli("fix", KC, str(sim.kubeconfig), "--dry-run")
        assert r.exit_code == 1, r.output
        assert "ds.initContainer.cni-plugins.securityContext.privileged: (not set) -> true" in r.stdout
        assert "managed by HelmChart kube-system/rke2-multus (the k3s/RKE2 Helm controller)" in r.stderr
        assert "reverted at its next upgrade or reconcile" in r.stderr
