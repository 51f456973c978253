"""Setting checks that no bundled example trips, each next to the healthy install it breaks."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from kubectl_multus.adapters.dumpdir import load
from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.findings import Severity
from kubectl_multus.core.snapshot import Snapshot
from tests import scenarios as sc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def thin_on_kubeadm() -> Snapshot:
    """The upstream thin DaemonSet on a kubeadm node with flannel: healthy."""
    ds = load(str(EXAMPLES / "k3s-upstream-thin-unchanged")).daemonsets[0]
    files = sc.distro_files("kubeadm")
    return Snapshot(
        "thin-kubeadm",
        nodes=(sc.node("node-1", "kubeadm"),),
        daemonsets=(copy.deepcopy(ds),),
        node_files={"node-1": sc.node_files(files, ["/opt/cni/bin"])},
    )


def thick_on_kubeadm() -> Snapshot:
    snap = load(str(EXAMPLES / "kubeadm-healthy"))
    return replace(snap, configmaps=tuple(copy.deepcopy(c) for c in snap.configmaps))


def with_args(snap: Snapshot, *args: str) -> Snapshot:
    ds = copy.deepcopy(snap.daemonsets[0])
    ds["spec"]["template"]["spec"]["containers"][0]["args"] += list(args)
    return replace(snap, daemonsets=(ds,))


def with_daemon_config(snap: Snapshot, **keys: str) -> Snapshot:
    cm = snap.configmaps[0]
    config = json.loads(cm["data"]["daemon-config.json"])
    cm["data"]["daemon-config.json"] = json.dumps({**config, **keys})
    return snap


def problems(snap: Snapshot) -> dict[str, str]:
    """field -> code of every warning or error."""
    return {f.field or f.object: f.code for f in diagnose(snap).findings if f.severity >= Severity.WARNING}


@pytest.mark.parametrize("healthy", [thin_on_kubeadm, thick_on_kubeadm])
def test_the_bases_are_healthy(healthy):
    assert problems(healthy()) == {}


def test_m104_container_path_in_a_setting_read_on_the_host():
    snap = with_args(thin_on_kubeadm(), "--multus-kubeconfig-file-host=/host/etc/cni/net.d/multus.d/multus.kubeconfig")
    f = next(f for f in diagnose(snap).findings if f.code == "M104")
    assert f.expected == "/etc/cni/net.d/multus.d/multus.kubeconfig"


def test_m109_host_setting_naming_a_missing_directory():
    snap = with_args(thin_on_kubeadm(), "--additional-bin-dir=/opt/extra/bin")
    f = next(f for f in diagnose(snap).findings if f.code == "M109")
    assert f.current == "/opt/extra/bin" and f.nodes == ("node-1",)
    assert "M109" not in problems(with_args(thin_on_kubeadm(), "--additional-bin-dir=/opt/cni/bin")).values()


def test_m110_no_primary_config_in_the_autoconfig_dir():
    snap = thin_on_kubeadm()
    snap = replace(snap, node_files={"node-1": sc.node_files({}, ["/etc/cni/net.d", "/opt/cni/bin"])})
    assert problems(snap)["container kube-multus arg --multus-autoconfig-dir"] == "M110"


def test_m111_socket_dir_the_shim_does_not_see():
    snap = with_daemon_config(thick_on_kubeadm(), socketDir="/run/multus-private/")
    assert problems(snap)["daemon-config socketDir"] == "M111"


def test_m114_chroot_dir_that_is_not_the_host_root():
    snap = with_daemon_config(thick_on_kubeadm(), chrootDir="/hostroot/opt")
    assert problems(snap)["daemon-config chrootDir"] == "M114"


def test_m002_thin_messages_from_a_thick_daemonset():
    snap = thick_on_kubeadm()
    pod = snap.pods[0]
    key = (pod["metadata"]["namespace"], pod["metadata"]["name"], "kube-multus", False)
    thin_error = "cni-conf-dir is not found: stat /host/etc/cni/net.d: no such file or directory"
    found = diagnose(replace(snap, logs={key: thin_error})).findings
    mixed = [f for f in found if f.code == "M002"]
    assert len(mixed) == 1 and "thin" in mixed[0].message and mixed[0].nodes == (pod["spec"]["nodeName"],)


def test_m205_multus_config_left_where_the_runtime_does_not_read():
    """On k3s the runtime reads the k3s conf dir; a 00-multus.conf in /etc/cni/net.d is a leftover."""
    snap = load(str(EXAMPLES / "k3s-upstream-thin-unchanged"))
    files = snap.node_files[snap.nodes[0]["metadata"]["name"]]
    stray = replace(
        files,
        entries={
            **files.entries,
            "/etc/cni/net.d/00-multus.conf": files.entries[
                next(p for p in files.entries if p.endswith("10-flannel.conflist"))
            ],
        },
    )
    before = {f.code for f in diagnose(snap).findings}
    after = [f for f in diagnose(replace(snap, node_files={snap.nodes[0]["metadata"]["name"]: stray})).findings]
    assert "M205" not in before
    assert [f.current for f in after if f.code == "M205"] == ["/etc/cni/net.d/00-multus.conf"]
