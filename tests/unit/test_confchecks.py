"""The generated 00-multus.conf(list) against the primary CNI (core.confchecks) and the primary
CNI's DaemonSet (core.primarycni): each check fires on its case and stays quiet on the healthy one."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_multus.adapters.dumpdir import load
from kubectl_multus.adapters.dumpwrite import write
from kubectl_multus.core.confchecks import jwt_exp
from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.planner import build_plan
from kubectl_multus.core.primarycni import primary_kind
from kubectl_multus.core.snapshot import Snapshot
from tests import scenarios as sc
from tests.unit.test_diagnose import openshift_like

CONF = "/etc/cni/net.d"
MULTUS_CONF = f"{CONF}/00-multus.conf"
KUBECONFIG = f"{CONF}/multus.d/multus.kubeconfig"
CODES = ("M207", "M208", "M209", "M210", "M211", "M212", "M213", "M214")


def thin_ds() -> dict[str, Any]:
    doc = yaml.safe_load((sc.REPO / "examples/k3s-upstream-thin-unchanged/objects/daemonsets.yaml").read_text())
    return dict(doc["items"][0])


def generated(delegate: dict[str, Any], version: str | None = None) -> str:
    """What the thin entrypoint writes: the primary's JSON inline under delegates."""
    return json.dumps(
        {
            "cniVersion": version or delegate["cniVersion"],
            "name": "multus-cni-network",
            "type": "multus",
            "kubeconfig": KUBECONFIG,
            "delegates": [delegate],
        }
    )


def jwt(exp: int) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'iss': 'kubernetes/serviceaccount', 'exp': exp})}.c2lnbmF0dXJl"


def kubeconfig(token: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://10.96.0.1:443\n"
        f'users:\n- name: multus\n  user:\n    token: "{token}"\n'
    )


def thin(files: dict[str, str | None], *, captured_at: str = "", extra: tuple[dict[str, Any], ...] = ()) -> Snapshot:
    """The upstream thin DaemonSet, its pod Running on a kubeadm node with these conf dir files."""
    ds = thin_ds()
    base: dict[str, str | None] = {KUBECONFIG: kubeconfig(jwt(4102444800))}  # exp in 2100
    base.update({f"/opt/cni/bin/{p}": None for p in (*sc.PLUGINS, "multus")})
    base.update(files)
    return Snapshot(
        "built",
        nodes=(sc.node("node-1", "kubeadm"),),
        daemonsets=(ds, *extra),
        pods=(sc.pod(ds, "node-1"),),
        node_files={"node-1": sc.node_files(base)},
        captured_at=captured_at,
    )


FLANNEL = {**sc.FLANNEL, "cniVersion": "0.3.1"}
HEALTHY = {f"{CONF}/10-flannel.conflist": json.dumps(FLANNEL), MULTUS_CONF: generated(FLANNEL)}


def codes(snap: Snapshot) -> list[str]:
    return sorted(f.code for f in diagnose(snap).findings if f.code in CODES)


def test_healthy_thin_node_raises_none_of_these():
    assert codes(thin(HEALTHY, captured_at="2026-12-03T19:40:00Z")) == []


def test_bundled_healthy_example_stays_clean():
    assert codes(load(str(sc.REPO / "examples/kubeadm-healthy"))) == []


# --- M207: renamed away -------------------------------------------------------------------------
def test_renamed_by_another_tool_is_put_back():
    files = {f"{CONF}/10-flannel.conflist": json.dumps(FLANNEL), f"{MULTUS_CONF}.bak": generated(FLANNEL)}
    snap = thin(files)
    report = diagnose(snap)
    f = next(f for f in report.findings if f.code == "M207")
    assert "another tool" in f.message and "10-flannel.conflist" in f.message
    item = next(i for i in build_plan(report, snap).items if i.target.path == MULTUS_CONF)
    assert item.before == "" and json.loads(item.after)["type"] == "multus"
    assert "M214" not in codes(snap)  # no Cilium here


def test_a_backup_of_our_own_beside_a_live_config_is_not_a_rename():
    files = {**HEALTHY, f"{MULTUS_CONF}.kubectl-multus-20261203T101010Z.bak": generated(FLANNEL)}
    assert codes(thin(files)) == []


def test_renamed_copy_that_does_not_parse_is_a_restart_not_a_write():
    files = {f"{CONF}/10-flannel.conflist": json.dumps(FLANNEL), f"{MULTUS_CONF}.cilium_bak": "{"}
    report = diagnose(thin(files))
    f = next(f for f in report.findings if f.code == "M207")
    assert f.changes == () and "restart the Multus pod" in f.remediation


# --- M210: delegating to itself -----------------------------------------------------------------
def test_config_generated_from_a_leftover_multus_config_delegates_to_itself():
    leftover = {"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus", "delegates": [FLANNEL]}
    files = {
        f"{CONF}/10-flannel.conflist": json.dumps(FLANNEL),
        f"{CONF}/05-multus.conf": json.dumps(leftover),  # an old install's config, first by name
        MULTUS_CONF: generated(leftover),
    }
    snap = thin(files)
    report = diagnose(snap)
    loops = [f for f in report.findings if f.code == "M210"]
    assert len(loops) == 1 and "M211" not in {f.code for f in report.findings}
    removed = {i.target.path for i in build_plan(report, snap).items if i.after == ""}
    assert removed == {MULTUS_CONF, f"{CONF}/05-multus.conf"}


def test_multus_config_named_as_the_master_is_not_removed():
    leftover = {"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus", "delegates": [FLANNEL]}
    files = {
        f"{CONF}/10-flannel.conflist": json.dumps(FLANNEL),
        f"{CONF}/70-multus.conf": json.dumps(leftover),
        MULTUS_CONF: generated(leftover),
    }
    snap = thin(files)
    ds = snap.daemonsets[0]
    container = ds["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [*container["args"], "--multus-master-cni-file-name=70-multus.conf"]
    snap = replace(snap, pods=(sc.pod(ds, "node-1"),))
    report = diagnose(snap)
    loop = next(f for f in report.findings if f.code == "M210")
    assert "master CNI file" in loop.remediation
    removed = {i.target.path for i in build_plan(report, snap).items if i.after == ""}
    assert removed == {MULTUS_CONF}  # not the file the flag names


# --- M211: stale --------------------------------------------------------------------------------
def test_thin_config_still_delegating_to_the_old_primary_is_stale():
    cilium = {"cniVersion": "0.3.1", "name": "cilium", "type": "cilium-cni"}
    files = {**HEALTHY, f"{CONF}/05-cilium.conflist": json.dumps(cilium)}
    report = diagnose(thin(files))
    stale = [f for f in report.findings if f.code == "M211"]
    assert len(stale) == 1 and stale[0].expected == f"{CONF}/05-cilium.conflist" and "'cbr0'" in stale[0].current
    assert stale[0].changes == () and any("M211" in m for m in build_plan(report, thin(files)).manual)


def test_primary_named_by_the_master_cni_flag_is_not_stale():
    """--multus-master-cni-file-name picks the primary by name, not the first file: a config that
    sorts before it is not what Multus takes, so the file generated from the named one is current."""
    cilium = {"cniVersion": "0.3.1", "name": "cilium", "type": "cilium-cni"}
    files = {**HEALTHY, f"{CONF}/05-cilium.conflist": json.dumps(cilium)}
    for master, expected in (("10-flannel.conflist", []), ("05-cilium.conflist", ["M211"])):
        snap = thin(files)
        ds = snap.daemonsets[0]
        container = ds["spec"]["template"]["spec"]["containers"][0]
        container["args"] = [*container["args"], f"--multus-master-cni-file-name={master}"]
        assert codes(replace(snap, pods=(sc.pod(ds, "node-1"),))) == expected


def test_thick_master_cni_names_the_primary_clusternetwork_points_at():
    snap = openshift_like()
    files = snap.node_files["master-0"]
    conf = {"type": "multus-shim", "cniVersion": "0.3.1", "clusterNetwork": "/host/run/multus/cni/net.d/80-sdn.conf"}
    entries = {
        **files.entries,
        "/etc/kubernetes/cni/net.d/00-multus.conf": sc.Entry("file", json.dumps(conf)),
        "/run/multus/cni/net.d/80-sdn.conf": sc.Entry(
            "file", json.dumps({"cniVersion": "0.3.1", "name": "sdn", "type": "openshift-sdn"})
        ),
    }
    built = replace(snap, node_files={"master-0": sc.NodeFiles(entries, files.roots)})
    assert codes(built) == ["M211"]
    cm = next(c for c in built.configmaps if "daemon-config.json" in (c.get("data") or {}))
    data = json.loads(cm["data"]["daemon-config.json"])
    named = {**cm, "data": {**cm["data"], "daemon-config.json": json.dumps({**data, "multusMasterCNI": "80-sdn.conf"})}}
    others = tuple(c for c in built.configmaps if c is not cm)
    assert codes(replace(built, configmaps=(*others, named))) == []


def test_thick_clusternetwork_naming_another_file_is_stale():
    snap = openshift_like()
    files = snap.node_files["master-0"]
    old = {"type": "multus-shim", "cniVersion": "0.3.1", "clusterNetwork": "/host/run/multus/cni/net.d/80-sdn.conf"}
    good = {**old, "clusterNetwork": "/host/run/multus/cni/net.d/10-ovn-kubernetes.conf"}
    for conf, expected in ((good, []), (old, ["M211"])):
        entries = {**files.entries, "/etc/kubernetes/cni/net.d/00-multus.conf": sc.Entry("file", json.dumps(conf))}
        built = replace(snap, node_files={"master-0": sc.NodeFiles(entries, files.roots)})
        assert codes(built) == expected


# --- M212: cniVersion ---------------------------------------------------------------------------
def test_top_level_0_4_0_over_a_0_3_1_delegate_is_rejected():
    files = {f"{CONF}/10-flannel.conflist": json.dumps(FLANNEL), MULTUS_CONF: generated(FLANNEL, "0.4.0")}
    report = diagnose(thin(files))
    f = next(f for f in report.findings if f.code == "M212")
    assert (f.current, f.expected) == ("0.4.0", "0.3.1") and f.changes == ()


def test_thick_cniversion_mismatch_is_fixed_in_the_daemon_config():
    snap = openshift_like()
    cm = snap.configmaps[0]
    conf = json.loads(cm["data"]["daemon-config.json"])
    files = snap.node_files["master-0"]
    ovn_old = json.dumps({"cniVersion": "0.3.1", "name": "ovn-kubernetes", "type": "ovn-k8s-cni-overlay"})
    generated_conf = {
        "type": "multus-shim",
        "cniVersion": "1.0.0",
        "clusterNetwork": "/host/run/multus/cni/net.d/10-ovn-kubernetes.conf",
    }
    entries = {
        **files.entries,
        "/run/multus/cni/net.d/10-ovn-kubernetes.conf": sc.Entry("file", ovn_old),
        "/etc/kubernetes/cni/net.d/00-multus.conf": sc.Entry("file", json.dumps(generated_conf)),
    }
    built = replace(
        snap,
        configmaps=({**cm, "data": {"daemon-config.json": json.dumps({**conf, "cniVersion": "1.0.0"})}},),
        node_files={"master-0": sc.NodeFiles(entries, files.roots)},
    )
    report = diagnose(built)
    f = next(f for f in report.findings if f.code == "M212")
    assert [(c.key, c.value) for c in f.changes] == [("daemon_config.cniVersion", "0.3.1")]
    assert json.loads(build_plan(report, built).items[0].after)["cniVersion"] == "0.3.1"
    assert "M212" not in codes(snap)  # 0.3.1 over 0.4.0 is fine


# --- M213: token --------------------------------------------------------------------------------
def test_expired_token_is_reported_without_printing_it():
    token = jwt(1764000000)  # 2025-11-24
    snap = thin({**HEALTHY, KUBECONFIG: kubeconfig(token)}, captured_at="2026-12-03T19:40:00Z")
    report = diagnose(snap)
    f = next(f for f in report.findings if f.code == "M213")
    assert f.current == "2025-11-24T16:00:00Z" and "restart the Multus pod on node node-1" in f.remediation
    assert token not in repr(report) and token.split(".")[1] not in repr(report)
    assert codes(replace(snap, captured_at="2025-11-01T00:00:00Z")) == []  # not yet expired then
    assert codes(replace(snap, captured_at="")) == []  # no capture time: no "now" to judge by


def test_expired_token_is_still_found_in_a_dump_that_holds_no_token(tmp_path: Path):
    """The dump replaces the token by an unsigned stand-in holding only its exp claim: the expiry
    is judged offline as of the capture time, and nothing of the credential is written."""
    token = jwt(1764000000)
    snap = thin({**HEALTHY, KUBECONFIG: kubeconfig(token)}, captured_at="2026-12-03T19:40:00Z")
    written = write(snap, tmp_path / "dump")
    text = "".join(p.read_text(errors="replace") for p in written if p.is_file())
    assert token.split(".")[2] not in text and "kubernetes/serviceaccount" not in text
    assert token.split(".")[1] not in text  # the claims as issued (iss) are gone too
    offline = diagnose(load(str(tmp_path / "dump")))
    assert [f.current for f in offline.findings if f.code == "M213"] == ["2025-11-24T16:00:00Z"]
    fresh = thin({**HEALTHY, KUBECONFIG: kubeconfig(jwt(4102444800))}, captured_at="2026-12-03T19:40:00Z")
    write(fresh, tmp_path / "fresh")
    assert codes(load(str(tmp_path / "fresh"))) == []


def test_jwt_exp_reads_only_well_formed_claims():
    assert jwt_exp(jwt(123)) == 123
    assert jwt_exp("not.a-jwt.x") is None and jwt_exp("REDACTED") is None


def test_capture_time_round_trips_through_a_dump(tmp_path: Path):
    snap = thin(HEALTHY, captured_at="2026-12-03T19:40:00Z")
    write(snap, tmp_path / "dump")
    assert load(str(tmp_path / "dump")).captured_at == "2026-12-03T19:40:00Z"
    write(replace(snap, captured_at=""), tmp_path / "none")
    assert load(str(tmp_path / "none")).captured_at == ""


# --- M208/M209: the primary CNI's DaemonSet -----------------------------------------------------
def _flannel_ds(ready: int, selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "kube-flannel", "image": "ghcr.io/flannel-io/flannel:v0.26.1"}]}
    if selector:
        spec["nodeSelector"] = selector
    return {
        "metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"},
        "spec": {"selector": {"matchLabels": {"app": "flannel"}}, "template": {"spec": spec}},
        "status": {"desiredNumberScheduled": 3, "numberReady": ready},
    }


@pytest.mark.parametrize(
    ("primary", "code", "says"),
    [
        pytest.param(_flannel_ds(2), "M208", "2 of 3 pods ready", id="not-ready"),
        pytest.param(_flannel_ds(3), "M209", "reports every pod ready", id="ready-yet-no-config"),
        pytest.param(_flannel_ds(3, {"pool": "gpu"}), "M209", "does not run on node node-1", id="not-on-node"),
    ],
)
def test_no_primary_config_names_the_primary_cnis_state(primary, code, says):
    snap = thin({KUBECONFIG: kubeconfig(jwt(4102444800))}, extra=(primary,))
    found = [f for f in diagnose(snap).findings if f.code in ("M208", "M209")]
    assert [f.code for f in found] == [code] and says in " ".join((found[0].message, *found[0].evidence))


def test_a_primary_config_present_means_no_primary_finding():
    assert codes(thin(HEALTHY, extra=(_flannel_ds(2),))) == []


@pytest.mark.parametrize(
    ("name", "images", "kind"),
    [
        ("rke2-canal", ["rancher/hardened-calico:v3", "rancher/hardened-flannel:v0"], "canal"),
        ("canal-x", ["docker.io/calico/node:v3.28.0", "quay.io/coreos/flannel:v0.15.1"], "canal"),
        ("calico-node", ["docker.io/calico/node:v3.28.0"], "calico"),
        ("agent", ["quay.io/cilium/cilium:v1.16.0@sha256:abc"], "cilium"),
        ("cilium-envoy", ["quay.io/cilium/cilium-envoy:v1.30"], None),
        ("node-exporter", ["quay.io/prometheus/node-exporter:v1.8.0"], None),
        ("kube-multus-ds", ["ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0"], None),
        ("ovnkube-node", ["quay.io/ovn-org/ovn-kubernetes/ovn-daemonset-ubuntu:master"], "ovn-kubernetes"),
        ("registry-port", ["registry.local:5000/flannel:v0.26.1"], "flannel"),
    ],
)
def test_primary_kind_by_name_then_images(name, images, kind):
    ds = {
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}}},
    }
    assert primary_kind(ds) == kind
