"""Replay what the real Multus did (shared/fixtures/observed): diagnose calls healthy exactly the
scenarios the real Multus passed, names the setting at fault in the others, and its fix plan
turns each failed scenario into one that diagnoses clean, with the values of the fixed runs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.install import find_installs, thick_settings, thin_settings
from kubectl_multus.core.planner import applied, build_plan
from kubectl_multus.core.snapshot import NodeFiles
from tests import scenarios as sc

NAMES = sc.observed_names() if sc.SHARED.is_dir() else []

# Which setting is at fault in each failed run (the fixture's `why` and log lines say so).
AT_FAULT = {
    "thick-k3s-binDir-default": {"daemon-config binDir"},
    "thick-k3s-host-file-daemon-config": {"daemon-config cniConfigDir", "daemon-config multusAutoconfigDir"},
    "thick-k3s-host-paths-in-daemon-config": {"daemon-config cniConfigDir", "daemon-config multusAutoconfigDir"},
    "thick-no-cniConfigDir": {"daemon-config cniConfigDir"},
    "thick-readiness-file-missing": {"daemon-config readinessindicatorfile"},
    "thick-upstream-on-k3s": {"volume cni hostPath", "volume cnibin hostPath", "daemon-config binDir"},
    "thin-bin-dir-outside-mounts": {"container kube-multus arg --cni-bin-dir"},
    "thin-k3s-doubled-prefix": {
        "container kube-multus arg --cni-conf-dir",
        "container kube-multus arg --multus-autoconfig-dir",
        "container kube-multus arg --multus-kubeconfig-file-host",
    },
    "thin-k3s-kubeconfig-flag-default": {"container kube-multus arg --multus-kubeconfig-file-host"},
    "thin-upstream-on-k3s": {"volume cni hostPath", "volume cnibin hostPath"},
}

# The fixed run whose values the plan must reproduce.
FIXED = {
    "thick-k3s-binDir-default": "thick-k3s-fixed",
    "thick-k3s-host-paths-in-daemon-config": "thick-k3s-fixed",
    "thick-upstream-on-k3s": "thick-k3s-fixed",
    "thick-k3s-host-file-daemon-config": "thick-k3s-host-file-daemon-config-fixed",
    "thick-no-cniConfigDir": "thick-upstream-on-kubeadm",
    "thin-bin-dir-outside-mounts": "thin-upstream-on-kubeadm",
    "thin-k3s-doubled-prefix": "thin-k3s-fixed",
    "thin-k3s-kubeconfig-flag-default": "thin-k3s-fixed",
    "thin-upstream-on-k3s": "thin-k3s-fixed",
}

# Without the node's files some faults cannot be seen in the API objects alone.
INVISIBLE_WITHOUT_FILES = {
    "thick-readiness-file-missing": "only the node shows that 10-calico.conflist is absent",
}
# ... and a daemon config kept as a node file cannot be read at all: reported as unchecked.
UNCHECKED_WITHOUT_FILES = {"thick-k3s-host-file-daemon-config", "thick-k3s-host-file-daemon-config-fixed"}


@pytest.mark.parametrize("name", NAMES)
def test_verdict_matches_the_real_multus(shared, name):
    report = diagnose(sc.observed(name))
    assert report.healthy == (sc.observed_verdict(name) == "pass"), [(f.code, f.field) for f in report.findings]


@pytest.mark.parametrize("name", NAMES)
def test_verdict_holds_without_logs_or_pod_status(shared, name):
    """The checks read the configuration and node files, not just the symptoms."""
    report = diagnose(sc.observed(name, with_logs=False, with_pods=False))
    assert report.healthy == (sc.observed_verdict(name) == "pass")


@pytest.mark.parametrize("name", NAMES)
def test_verdict_from_api_objects_alone(shared, name):
    report = diagnose(sc.observed(name, with_logs=False, with_pods=False, with_files=False))
    if name in INVISIBLE_WITHOUT_FILES:
        assert report.healthy, "without node files this fault is invisible; a report of it would be a guess"
        return
    if name in UNCHECKED_WITHOUT_FILES:
        assert {f.code for f in report.findings if f.severity >= 2} == {"M900"}
        return
    assert report.healthy == (sc.observed_verdict(name) == "pass")


@pytest.mark.parametrize("name", sorted(AT_FAULT))
def test_failed_scenarios_name_the_setting_at_fault(shared, name):
    report = diagnose(sc.observed(name))
    fields = {f.field for f in report.findings if f.severity >= 2}
    assert AT_FAULT[name] <= fields
    for f in report.findings:
        if f.field in AT_FAULT[name] and f.code not in ("M112",):
            assert f.expected, f"{f.code} {f.field} gives no right value"


def _restarted(snapshot):
    """After a fix the old pods, their logs and the 00-multus.conf they wrote are gone (the
    restarted Multus writes a new one); judge the new configuration."""
    files = {
        node: NodeFiles({p: e for p, e in f.entries.items() if "/00-multus.conf" not in p}, f.roots)
        for node, f in snapshot.node_files.items()
    }
    return replace(snapshot, pods=(), logs={}, node_files=files)


def _effective(snapshot):
    """Setting -> effective value, and volume -> hostPath / mountPaths, of the snapshot's Multus."""
    inst = find_installs(snapshot)[0]
    if inst.mode == "thin":
        settings = thin_settings(inst)
    else:
        loc = inst.mounts.resolve(inst.daemon_config_path)
        if loc.kind == "configMap":
            text = snapshot.configmap(inst.namespace, loc.config_map)["data"][loc.key]
        else:
            text = snapshot.node_files["node-1"].read(loc.host_path)
        settings = thick_settings(json.loads(text))
    values = {s.name: s.effective.rstrip("/") if s.effective else None for s in settings}
    vols = {m.volume.name: (m.volume.host_path, m.mount_path) for m in inst.mounts.mounts}
    return values, vols


@pytest.mark.parametrize("name", sorted(FIXED))
def test_plan_reproduces_the_fixed_run(shared, name):
    broken = sc.observed(name)
    plan = build_plan(diagnose(broken), broken)
    assert plan.items and not plan.conflicts
    after = _restarted(applied(broken, plan))
    assert diagnose(after).healthy, [(f.code, f.field) for f in diagnose(after).findings]
    got_values, got_vols = _effective(after)
    want_values, want_vols = _effective(sc.observed(FIXED[name]))
    for key in (
        "--cni-conf-dir",
        "--multus-autoconfig-dir",
        "--cni-bin-dir",
        "--multus-kubeconfig-file-host",
        "cniConfigDir",
        "multusAutoconfigDir",
        "binDir",
        "socketDir",
        "chrootDir",
    ):
        if key in want_values:
            assert got_values[key] == want_values[key], key
    for vol in ("cni", "cnibin"):
        assert got_vols[vol] == want_vols[vol], vol


def test_readiness_plan_points_at_the_primary_config_present(shared):
    broken = sc.observed("thick-readiness-file-missing")
    plan = build_plan(diagnose(broken), broken)
    (change,) = plan.changes
    assert change.key == "daemon_config.readinessindicatorfile"
    assert change.value == "/host/etc/cni/net.d/10-flannel.conflist"
    assert diagnose(_restarted(applied(broken, plan))).healthy


def test_doubled_prefix_log_line_is_tied_to_the_flag(shared):
    report = diagnose(sc.observed("thin-k3s-doubled-prefix"))
    finding = next(f for f in report.findings if f.field.endswith("arg --cni-conf-dir"))
    assert finding.code == "M103"
    assert any("cni-conf-dir is not found" in e for e in finding.evidence)
    assert "M202" not in {f.code for f in report.findings}, "a log line the config explains is not a finding of its own"
