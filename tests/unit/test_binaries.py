"""CNI plugin binaries (core.binaries, M401): what each config runs, and where Multus looks for it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from kubectl_multus.core.binaries import nad_config, plugin_types, search_path
from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.planner import build_plan
from kubectl_multus.core.snapshot import NodeFiles, Snapshot
from tests import scenarios as sc
from tests.unit.test_layouts import UPSTREAM_MOUNTS, UPSTREAM_THIN_ARGS, UPSTREAM_VOLUMES, thin


def nad(config: Any, name: str = "net1", namespace: str = "default") -> dict[str, Any]:
    spec = {} if config is None else {"config": config if isinstance(config, str) else json.dumps(config)}
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"type": "macvlan", "ipam": {"type": "host-local"}}, [("macvlan", "type"), ("host-local", "ipam type")]),
        (
            {"plugins": [{"type": "bridge", "ipam": {"type": "whereabouts"}}, {"type": "tuning"}]},
            [("bridge", "type"), ("whereabouts", "ipam type"), ("tuning", "type")],
        ),
        (
            sc.FLANNEL,
            [
                ("flannel", "type"),
                ("bridge", "flannel delegate type"),
                ("host-local", "flannel delegate ipam type"),
                ("portmap", "type"),
            ],
        ),
        ({"type": "ipvlan", "ipam": {}}, [("ipvlan", "type")]),
    ],
    ids=["conf-with-ipam", "conflist-chained", "flannel-delegates-to-bridge", "empty-ipam"],
)
def test_plugin_types(config: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert plugin_types(config) == expected


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ({"cniVersion": "0.3.1", "master": "eth0"}, 'no "type"'),
        ({"plugins": []}, "non-empty list"),
        ({"plugins": [{"type": "macvlan"}, {"capabilities": {}}]}, "plugins[1] has no type"),
    ],
    ids=["invalid-json", "array", "no-type", "empty-plugins", "untyped-chained-plugin"],
)
def test_unusable_nad_configs_say_why(config: Any, error: str) -> None:
    c = nad_config(nad(config))
    assert c.error is not None and error in c.error and c.types == ()


def test_nad_without_config_is_read_from_a_file() -> None:
    assert nad_config(nad(None)).from_file and nad_config(nad("  ")).from_file
    assert not nad_config(nad({"type": "macvlan"})).from_file


def test_search_path_thin_starts_with_its_bin_dir_then_the_runtimes() -> None:
    k3s = "/var/lib/rancher/k3s/data/cni"
    assert search_path("thin", k3s, (k3s,), None) == ("/opt/cni/bin", k3s)
    assert search_path("thin", k3s, (k3s,), "/extra/bin/") == ("/extra/bin", k3s)
    assert search_path("thick", k3s, (k3s, "/opt/cni/bin"), None) == (k3s,)  # the daemon's binDir alone


# --- on a node --------------------------------------------------------------------------------


def snapshot(*nads: dict[str, Any], bins: tuple[str, ...] = sc.PLUGINS, running: bool = True, **kw: Any) -> Snapshot:
    ds = thin(UPSTREAM_THIN_ARGS, UPSTREAM_MOUNTS, UPSTREAM_VOLUMES)
    files = {
        "/etc/cni/net.d/10-flannel.conflist": json.dumps(sc.FLANNEL),
        "/etc/cni/net.d/00-multus.conf": "{}",
        **{f"/opt/cni/bin/{b}": None for b in bins},
    }
    return Snapshot(
        "t",
        nodes=(sc.node("node-1", "kubeadm"), sc.node("node-2", "kubeadm")),
        daemonsets=(ds,),
        pods=(sc.pod(ds, "node-1", running=running), sc.pod(ds, "node-2", running=running)),
        others=nads,
        node_files={"node-1": sc.node_files(files), "node-2": sc.node_files(files)},
        **kw,
    )


def m401(s: Snapshot) -> dict[str, Any]:
    return {f.field: f for f in diagnose(s).findings if f.code == "M401"}


def test_healthy_node_has_every_binary() -> None:
    s = snapshot(nad({"type": "macvlan", "ipam": {"type": "host-local"}}))
    assert diagnose(s).healthy and m401(s) == {}


def test_nad_type_and_ipam_type_missing_on_every_node_is_one_finding_with_a_manual_install() -> None:
    s = snapshot(nad({"type": "ipvlan", "ipam": {"type": "whereabouts"}}, "storage", "longhorn"))
    found = m401(s)
    assert set(found) == {"plugin ipvlan", "plugin whereabouts"}
    f = found["plugin ipvlan"]
    assert f.nodes == ("node-1", "node-2") and f.expected == "/opt/cni/bin/ipvlan"
    assert f.object == "NetworkAttachmentDefinition longhorn/storage"
    assert 'failed to find plugin "ipvlan" in path [/opt/cni/bin]' in f.message
    assert "containernetworking/plugins" in f.remediation
    assert "containernetworking/plugins" not in found["plugin whereabouts"].remediation  # not a reference plugin
    manual = build_plan(diagnose(s), s).manual
    assert any("/opt/cni/bin/ipvlan" in m and "(nodes node-1, node-2)" in m for m in manual)


def test_a_misspelt_type_gets_a_suggestion() -> None:
    f = m401(snapshot(nad({"type": "macvlann"})))["plugin macvlann"]
    assert "did you mean macvlan?" in f.message


def test_primary_configs_plugins_are_checked() -> None:
    found = m401(snapshot(bins=tuple(b for b in sc.PLUGINS if b != "portmap")))
    assert set(found) == {"plugin portmap"}
    assert found["plugin portmap"].object == "primary config /etc/cni/net.d/10-flannel.conflist"


def test_multus_binary_missing_where_its_pod_runs() -> None:
    found = m401(snapshot(bins=tuple(b for b in sc.PLUGINS if b != "multus")))
    assert set(found) == {"plugin multus"}
    assert "restart the Multus pod" in found["plugin multus"].remediation
    # a crash-looping pod may not have copied it yet: that pod's findings say why
    assert m401(snapshot(bins=tuple(b for b in sc.PLUGINS if b != "multus"), running=False)) == {}


def test_unknown_listing_is_not_missing() -> None:
    s = snapshot(nad({"type": "ipvlan"}))
    etc_only = {n: {p: e for p, e in f.entries.items() if p.startswith("/etc")} for n, f in s.node_files.items()}
    uncaptured = replace(s, node_files={n: NodeFiles(e, roots=("/etc/cni",)) for n, e in etc_only.items()})
    assert m401(uncaptured) == {}
    assert m401(replace(s, node_files={})) == {}


def test_the_log_line_is_evidence_and_a_stale_one_is_dropped() -> None:
    s = snapshot(nad({"type": "ipvlan"}))
    pod = s.pods[0]["metadata"]["name"]
    line = 'failed to delegate add: failed to find plugin "ipvlan" in path [/opt/cni/bin]'
    logged = replace(s, logs={("kube-system", pod, "kube-multus", False): line})
    f = m401(logged)["plugin ipvlan"]
    assert any(line in e for e in f.evidence)
    installed = replace(logged, others=(), node_files={})  # no NAD, no files: the log alone
    f = m401(installed)["plugin ipvlan"]
    assert f.expected == "/opt/cni/bin/ipvlan" and "(from the log)" in f.message
    with_it = snapshot(bins=(*sc.PLUGINS, "ipvlan"))
    stale = replace(with_it, logs={("kube-system", pod, "kube-multus", False): line})
    assert {f.code for f in diagnose(stale).findings} <= {"M301"}  # installed since: no M401, no M202


def test_thin_on_k3s_with_opt_cni_bin_not_captured_is_a_warning_to_check_by_hand() -> None:
    from kubectl_multus.core.findings import Severity

    k3s_bin = "/var/lib/rancher/k3s/data/cni"
    volumes = [
        v if v["name"] != "cnibin" else {"name": "cnibin", "hostPath": {"path": k3s_bin}} for v in UPSTREAM_VOLUMES
    ]
    volumes = [
        v if v["name"] != "cni" else {"name": "cni", "hostPath": {"path": "/var/lib/rancher/k3s/agent/etc/cni/net.d"}}
        for v in volumes
    ]
    ds = thin(UPSTREAM_THIN_ARGS, UPSTREAM_MOUNTS, volumes)
    files = sc.node_files(sc.distro_files("k3s"))
    captured = NodeFiles(files.entries, roots=("/var/lib/rancher/k3s",))  # /opt not reachable
    s = Snapshot("t", nodes=(sc.node("node-1", "k3s"),), daemonsets=(ds,), others=(nad({"type": "ipvlan"}),),
                 node_files={"node-1": captured})  # fmt: skip
    f = m401(s)["plugin ipvlan"]
    assert f.severity == Severity.WARNING and f.expected == f"{k3s_bin}/ipvlan"
    assert "host /opt/cni/bin: not captured, check by hand (ls /opt/cni/bin/ipvlan)" in f.evidence
    assert f.message.startswith(f"no CNI plugin binary ipvlan in {k3s_bin}, and /opt/cni/bin could not be read")
    assert m401(replace(s, others=(nad({"type": "macvlan"}),))) == {}  # found in the k3s dir: fine either way


def test_thin_searches_the_bin_dir_its_00_multus_conf_names_first() -> None:
    s = snapshot(nad({"type": "ipvlan"}))
    conf = json.dumps({"name": "multus-cni-network", "type": "multus", "binDir": "/usr/local/cni", "delegates": []})
    files = {n: sc.node_files({**{p: e.content for p, e in f.entries.items() if e.kind == "file"},
                               "/etc/cni/net.d/00-multus.conf": conf, "/usr/local/cni/ipvlan": None})
             for n, f in s.node_files.items()}  # fmt: skip
    assert m401(replace(s, node_files=files)) == {}  # found in the conf's binDir
    f = m401(s)["plugin ipvlan"]  # the conf sets none: /opt/cni/bin only
    assert "in path [/opt/cni/bin]" in f.message


def test_nad_bound_to_a_device_resource_is_only_checked_on_nodes_that_offer_it() -> None:
    """An SR-IOV-style NAD names a device plugin resource: its pods can only be scheduled where the
    node offers that resource, so nodes without it need not carry its plugin (sriov-cni is installed
    only on SR-IOV nodes)."""
    sriov = nad({"type": "sriov", "ipam": {"type": "host-local"}}, "sriov-net", "apps")
    sriov["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov_netdevice"}
    s = snapshot(sriov)
    n1, n2 = s.nodes
    offers = {**n1, "status": {**n1["status"], "allocatable": {"cpu": "4", "intel.com/sriov_netdevice": "8"}}}
    lacks = {**n2, "status": {**n2["status"], "allocatable": {"cpu": "4", "memory": "8Gi"}}}
    assert m401(replace(s, nodes=(offers, lacks)))["plugin sriov"].nodes == ("node-1",)
    zero = {**n2, "status": {**n2["status"], "allocatable": {"intel.com/sriov_netdevice": "0"}}}
    assert m401(replace(s, nodes=(offers, zero)))["plugin sriov"].nodes == ("node-1",)
    # allocatable not in the snapshot: unknown, so checked as before
    assert m401(s)["plugin sriov"].nodes == ("node-1", "node-2")
    # a healthy SR-IOV node with the plugin: nothing anywhere
    healthy = replace(s, nodes=(offers, lacks))
    files = dict(healthy.node_files)
    n1_files = files["node-1"]
    files["node-1"] = NodeFiles({**n1_files.entries, "/opt/cni/bin/sriov": sc.Entry("file", None)}, n1_files.roots)
    assert m401(replace(healthy, node_files=files)) == {}
