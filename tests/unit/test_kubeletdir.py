"""M125: the thick daemon's /var/lib/kubelet mount on distributions whose kubelet lives elsewhere."""

from __future__ import annotations

import pytest

from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.planner import build_plan
from tests import scenarios as sc
from tests.unit.test_layouts import THICK_CONF, cm, hp, snap, thick

BASE = [("cni", "/host/etc/cni/net.d"), ("cnibin", "/opt/cni/bin"), ("hostroot", "/hostroot"), ("run", "/host/run")]
K0S_KUBELET = "/var/lib/k0s/kubelet"
MICROK8S_KUBELET = "/var/snap/microk8s/common/var/lib/kubelet"


def daemonset(kubelet_host: str | None, mount_path: str = "/var/lib/kubelet") -> dict:
    """The upstream thick DaemonSet's volumes that matter here, with its kubelet dir mount."""
    volumes = [hp("cni", "/etc/cni/net.d"), hp("cnibin", "/opt/cni/bin"), hp("hostroot", "/"), hp("run", "/run")]
    if kubelet_host is None:
        return thick(BASE, volumes)
    return thick([*BASE, ("host-var-lib-kubelet", mount_path)], [*volumes, hp("host-var-lib-kubelet", kubelet_host)])


def files(distro: str, *extra: str) -> dict[str, str | None]:
    return {**sc.distro_files(distro), **{path: None for path in extra}}


@pytest.mark.parametrize(
    ("distro", "root"),
    [pytest.param("k0s", K0S_KUBELET, id="k0s"), pytest.param("microk8s", MICROK8S_KUBELET, id="microk8s")],
)
def test_upstream_kubelet_mount_on_a_distribution_with_another_kubelet_root(distro: str, root: str) -> None:
    ds = daemonset("/var/lib/kubelet")
    if distro == "microk8s":  # only the kubelet dir may differ from the node's
        spec = ds["spec"]["template"]["spec"]
        spec["volumes"][0]["hostPath"]["path"] = sc.DISTROS["microk8s"]["conf"]
        spec["volumes"][1]["hostPath"]["path"] = sc.DISTROS["microk8s"]["bin"]
        spec["containers"][0]["volumeMounts"][1]["mountPath"] = sc.DISTROS["microk8s"]["bin"]
        configmaps = [cm({**THICK_CONF, "binDir": sc.DISTROS["microk8s"]["bin"]})]
    else:
        configmaps = [cm()]
    snapshot = snap(ds, distro, files=files(distro, f"{root}/pod-resources/kubelet.sock"), configmaps=configmaps)
    report = diagnose(snapshot)
    found = [f for f in report.findings if f.severity > 1]
    assert [(f.code, f.field, f.current, f.expected) for f in found] == [
        ("M125", "volume host-var-lib-kubelet hostPath", "/var/lib/kubelet", root)
    ]
    assert f"host {root}/pod-resources exists" in found[0].evidence
    plan = build_plan(report, snapshot)
    assert {c.key: c.value for c in plan.changes} == {"ds.volume.host-var-lib-kubelet.hostPath": root}


@pytest.mark.parametrize(
    ("distro", "ds", "extra"),
    [
        pytest.param("kubeadm", daemonset("/var/lib/kubelet"), (), id="kubeadm-keeps-var-lib-kubelet"),
        pytest.param("k0s", daemonset(K0S_KUBELET), (f"{K0S_KUBELET}/pod-resources/kubelet.sock",), id="k0s-fixed"),
        pytest.param("k0s", daemonset(None), (), id="no-kubelet-mount"),
        pytest.param("k0s", daemonset("/var/lib/kubelet", "/host/var/lib/kubelet"), (), id="mounted-elsewhere"),
        # This k0s kubelet was given the usual root dir (--kubelet-root-dir=/var/lib/kubelet).
        pytest.param(
            "k0s", daemonset("/var/lib/kubelet"), ("/var/lib/kubelet/pod-resources/kubelet.sock",), id="k0s-usual-root"
        ),
    ],
)
def test_kubelet_mount_that_is_right_raises_nothing(distro: str, ds: dict, extra: tuple) -> None:
    snapshot = snap(ds, distro, files=files(distro, *extra), configmaps=[cm()])
    report = diagnose(snapshot)
    assert [f.code for f in report.findings if f.severity > 1] == []


def test_thin_multus_is_not_judged_by_its_volumes() -> None:
    ds = daemonset("/var/lib/kubelet")
    container = ds["spec"]["template"]["spec"]["containers"][0]
    container.update(command=["/thin_entrypoint"], image="ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2")
    report = diagnose(snap(ds, "k0s", files=files("k0s", f"{K0S_KUBELET}/pod-resources/kubelet.sock")))
    assert "M125" not in {f.code for f in report.findings}


def test_kubelet_root_found_nowhere_is_left_to_check_by_hand() -> None:
    snapshot = snap(daemonset("/var/lib/kubelet"), "k0s", files=files("k0s"), configmaps=[cm()])
    report = diagnose(snapshot)
    found = [f for f in report.findings if f.code == "M125"]
    assert [(f.severity.name, f.changes) for f in found] == [("INFO", ())] and report.healthy
    assert "--root-dir" in found[0].message
