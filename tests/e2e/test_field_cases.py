"""Every field case the checks cover, as a running simulated cluster (`tests/fieldcases.py`):
the simulated Multus runs on the case's node as the real one would, then `kubectl multus
diagnose -o json` must reach the case's `expected_diagnosis` and `kubectl multus fix --dry-run
-o json` must plan every checkable `expected_fix` value (fixtures README). Some cases are also
fixed for real (`fix --yes`), after which the diagnosis is clean; for cases 05-17 the same cluster
without the reported fault is diagnosed clean too (`HEALTHY`, at the end).

What each case's prose diagnosis means, as findings (code, field) on node-1 or cluster-wide;
the replay tests (`tests/replay/test_field.py`) map the same prose onto the same codes:

| case | expected_diagnosis | findings |
|---|---|---|
| 01 | in-pod path setting holds a host path (k3s prefix doubled), under no volumeMount | M103 arg --cni-conf-dir, M103 arg --multus-autoconfig-dir, M105 arg --multus-kubeconfig-file-host; nothing on volume cni |
| 02 | cni/cnibin hostPaths and the 00-multus.conf kubeconfig use vanilla paths on k3s | M107 volume cni, M108 volume cnibin, M105 arg --multus-kubeconfig-file-host |
| 03 | 00-multus.conf written to a dir the runtime does not use | M107 volume cni, M108 volume cnibin, M205 the stray host /etc/cni/net.d/00-multus.conf |
| 04 | multus binary not in the runtime's CNI bin dir (GKE) | M108 volume cnibin -> /home/kubernetes/bin; nothing on volume cni |
| 05 | cnibin hostPath is a versioned/symlinked k3s dir the runtime has left | M113 volume cnibin -> /var/lib/rancher/k3s/data/cni |
| 06 | NAD references a plugin type with no binary in any runtime bin dir | M401 plugin ipvlan of the NAD -> manual install of /var/lib/rancher/k3s/data/cni/ipvlan |
| 07 | delegate plugin binary (macvlan) missing from host CNI bin dir | M401 plugin macvlan of the NAD -> manual install of /opt/cni/bin/macvlan |
| 08 | container arg is not a flag the entrypoint accepts | M115 arg --cni-namespace-isolation (and only that arg) |
| 09 | autoconfig dir has no primary config because the primary CNI pods fail | M110 arg --multus-autoconfig-dir, M208 DaemonSet rke2-canal not ready (Multus the victim) |
| 10 | 00-multus.conf empty while a valid primary conflist exists | M206 node file /etc/cni/net.d/00-multus.conf |
| 11 | 00-multus.conf gone, .cilium_bak there; Cilium cni-exclusive=true | M207 node file 00-multus.conf (restore), M214 cilium-config cni-exclusive (manual) |
| 12 | daemon OOM-killed / evicted; socket absent; pod QoS Burstable | M302 (OOMKilled), M303 Burstable -> init container limits; M304 not reproduced (see its test) |
| 13 | kube-multus OOMKilled at its 50Mi limit | M302 resources.limits.memory, current 50Mi |
| 14 | thick cniConfigDir unset: its default is under no cni mount | M101 daemon-config cniConfigDir, M203 no 00-multus.conf on the host |
| 15 | multus-daemon given v3.9 flags; settings belong in daemon-config.json | M115 on each of the five args |
| 16 | thin image in a thick layout | M117 image -> v4.0.2-thick |
| 17 | plugin installer init container skipped a non-writeable bin dir (SELinux) | M305 container cni-plugins securityContext.privileged -> true |
| 18 | --cni-version differs from the primary's cniVersion | M116 arg --cni-version, current 0.3.1 |
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from simcluster.cluster import Cluster
from tests import fieldcases
from tests.e2e.conftest import cli, helper_pods
from tests.fieldcases import NODE, Field

KC = "--kubeconfig"
# expected_fix keys a plan can be checked against (fixtures README)
CHECKABLE = ("ds.volume.", "ds.mount.", "ds.arg.", "ds.image", "daemon_config.", "multus_conf.", "host.")
PROBLEMS = ("warning", "error")

EXPECTED: dict[str, set[tuple[str, str]]] = {
    "field-01": {
        ("M103", "container kube-multus arg --cni-conf-dir"),
        ("M103", "container kube-multus arg --multus-autoconfig-dir"),
        ("M105", "container kube-multus arg --multus-kubeconfig-file-host"),
        ("M201", ""),  # crash-looping: the thin entrypoint exits 0 after its startup check
    },
    "field-02": {
        ("M107", "volume cni hostPath"),
        ("M108", "volume cnibin hostPath"),
        ("M105", "container kube-multus arg --multus-kubeconfig-file-host"),
        ("M201", ""),
    },
    "field-03": {("M107", "volume cni hostPath"), ("M108", "volume cnibin hostPath"), ("M205", "volume cni")},
    "field-04": {("M108", "volume cnibin hostPath")},
    "field-05": {("M113", "volume cnibin hostPath")},
    "field-06": {("M401", "plugin ipvlan")},
    "field-07": {("M401", "plugin macvlan")},
    "field-08": {("M115", "container kube-multus arg --cni-namespace-isolation"), ("M201", "")},
    # the thin entrypoint exits 0 after "cannot find valid master CNI config" and restarts (M201)
    "field-09": {
        ("M110", "container kube-multus arg --multus-autoconfig-dir"),
        ("M208", "status.numberReady"),
        ("M201", ""),
    },
    "field-10": {("M206", "00-multus.conf")},
    "field-11": {("M207", "00-multus.conf"), ("M214", "cni-exclusive")},
    # killed and in back-off (M201); the kill is OOMKilled at the container's limit as the kubelet reports it
    "field-12": {
        ("M302", "container kube-multus resources.limits.memory"),
        ("M303", "resources"),
        ("M201", ""),
    },
    # the upstream init container has no limits: Burstable, and once OOM-killed that matters (M303)
    "field-13": {("M302", "container kube-multus resources.limits.memory"), ("M303", "resources"), ("M201", "")},
    "field-14": {("M101", "daemon-config cniConfigDir"), ("M203", "00-multus.conf")},
    "field-15": {
        *{
            ("M115", f"container kube-multus arg {flag}")
            for flag in (
                "-cni-version",
                "-cni-config-dir",
                "-multus-autoconfig-dir",
                "-multus-log-to-stderr",
                "-multus-log-level",
            )
        },
        ("M201", ""),
    },
    # the runtime's StartError (no cp in the distroless thin image) is M307's evidence; M117 says why
    "field-16": {("M117", "image"), ("M307", "container install-multus-binary command"), ("M201", "")},
    "field-17": {("M305", "container cni-plugins securityContext.privileged")},
    "field-18": {("M116", "container kube-multus arg --cni-version"), ("M201", "")},
}


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # fix --yes keeps its backups here
    return tmp_path / "state"


@contextmanager
def running(shared: Path, case: str, tmp_path: Path) -> Iterator[tuple[Cluster, Field]]:
    sim, f = fieldcases.build(shared, case, tmp_path / "sim")
    with sim:
        fieldcases.settle(sim, f)
        for path in map(f.setup.on_node, f.case["host_files"] or []):  # what the report says the node has
            assert node_file(sim, path).exists(), path
        yield sim, f


def diagnose(sim: Cluster, case: Field) -> tuple[int, list[dict[str, Any]]]:
    """The live diagnosis; the node was read (files checked) and taken for the case's distribution."""
    r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
    assert r.exit_code in (0, 1), r.output
    data = json.loads(r.stdout)
    (node,) = data["installs"][0]["nodes"]
    assert (node["name"], node["files"], node["distribution"]) == (NODE, "checked", case.setup.distro)
    return r.exit_code, data["findings"]


def dry_run(sim: Cluster) -> dict[str, Any]:
    r = cli("fix", KC, str(sim.kubeconfig), "--dry-run", "-o", "json")
    assert r.exit_code in (0, 1), r.output
    plan: dict[str, Any] = json.loads(r.stdout)
    return plan


def planned(plan: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for target in plan["targets"]:
        for c in target["changes"]:
            assert out.get(c["key"], c["value"]) == c["value"], f"{c['key']} planned twice, differently"
            out[c["key"]] = c["value"]
    return out


def problems(findings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(f["code"], f["field"]) for f in findings if f["severity"] in PROBLEMS}


def assert_diagnosis(case: str, findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Exactly the case's problems, each on the case's node (or cluster-wide); by field."""
    assert problems(findings) == EXPECTED[case], json.dumps(findings, indent=1)
    for f in findings:
        assert f["nodes"] in ([], [NODE]), f
    return {f["field"]: f for f in findings if f["severity"] in PROBLEMS}


def current_hostpath(sim: Cluster, volume: str) -> str | None:
    ds = sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")
    for v in ds["spec"]["template"]["spec"]["volumes"]:
        if v["name"] == volume:
            return str(v["hostPath"]["path"]) if "hostPath" in v else None
    return None


def assert_expected_fix(sim: Cluster, case: Field, plan: dict[str, Any]) -> None:
    """Every checkable expected_fix value is planned, or is already the DaemonSet's value (a
    hostPath the case says to keep); `multus_conf.*` and `host.*` keys are checked by the test."""
    changes = planned(plan)
    for key, value in case.case["expected_fix"].items():
        if not key.startswith(CHECKABLE) or key.startswith(("multus_conf.", "host.")):
            continue
        if key in changes:
            assert changes[key] == value, key
        else:
            assert key.startswith("ds.volume.") and key.endswith(".hostPath"), f"{key} not planned: {changes}"
            assert current_hostpath(sim, key.split(".")[2]) == value, key


def node_file(sim: Cluster, path: str) -> Path:
    return sim.node_root(NODE) / path.lstrip("/")


def multus_pod(sim: Cluster) -> dict[str, Any]:
    pods = [
        p
        for p in sim.store.list(sim.kind("pods"), "kube-system")
        if (p["metadata"].get("labels") or {}).get("app") == "multus"
    ]
    assert len(pods) == 1
    return pods[0]


def main_status(sim: Cluster) -> dict[str, Any]:
    status: dict[str, Any] = multus_pod(sim)["status"]["containerStatuses"][0]
    return status


def previous_log(sim: Cluster) -> str:
    return sim.kubelet.logs(multus_pod(sim), {"container": ["kube-multus"], "previous": ["true"]})


def fix_for_real(sim: Cluster) -> None:
    r = cli("fix", KC, str(sim.kubeconfig), "--yes")
    assert r.exit_code == 0, r.output
    assert "fixed and verified" in r.stderr
    assert helper_pods(sim) == []  # the privileged writer and the readers are gone


# --- the cases ---------------------------------------------------------------------------------
def test_field_01_doubled_k3s_prefix_in_thin_args(shared: Path, tmp_path: Path) -> None:
    with running(shared, "field-01", tmp_path) as (sim, case):
        assert main_status(sim)["lastState"]["terminated"]["exitCode"] == 0  # exits 0: Completed, restarted
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-01", findings)
        conf_dir = by_field["container kube-multus arg --cni-conf-dir"]
        assert "/var/lib/rancher/k3s/agent repeated" in conf_dir["message"]
        assert "no volume mount" in conf_dir["message"]
        # the simulated entrypoint printed the reporter's line; diagnose ties it to the flag
        assert any(case.case["log_lines"][0] in e for e in conf_dir["evidence"]), conf_dir["evidence"]
        assert_expected_fix(sim, case, dry_run(sim))


def test_field_02_vanilla_paths_on_old_k3s(shared: Path, tmp_path: Path) -> None:
    """k3s v1.19: the runtime reads the k3s conf dir and runs binaries from data/current/bin.

    The reporter ran Multus 3.x, whose entrypoint waited for a primary config ("Attemping to find
    master plugin configuration"); today's thin entrypoint of the same manifest exits instead
    ("cannot find valid master CNI config") and restarts. The second log line ("error getting
    pod: Unauthorized") is a CNI ADD error of a workload pod that the Multus pod never prints.
    The fix is applied, and the 00-multus.conf Multus then writes on the node carries the
    expected kubeconfig (`multus_conf.*`)."""
    with running(shared, "field-02", tmp_path) as (sim, case):
        conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
        assert not node_file(sim, f"{conf_dir}/00-multus.conf").exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-02", findings)
        assert by_field["volume cni hostPath"]["expected"] == conf_dir
        plan = dry_run(sim)
        assert_expected_fix(sim, case, plan)
        # multus_conf.kubeconfig: the thin entrypoint writes this flag into 00-multus.conf
        want = case.case["expected_fix"]
        assert planned(plan)["ds.arg.--multus-kubeconfig-file-host"] == want["multus_conf.kubeconfig"]

        fix_for_real(sim)
        written = node_file(sim, f"{conf_dir}/{want['multus_conf.filename']}")
        assert json.loads(written.read_text())["kubeconfig"] == want["multus_conf.kubeconfig"]
        assert node_file(sim, want["multus_conf.kubeconfig"]).is_file()
        assert node_file(sim, "/var/lib/rancher/k3s/data/current/bin/multus").is_file()
        status, findings = diagnose(sim, case)
        assert status == 0 and not problems(findings), findings


def test_field_03_multus_conf_copied_where_k3s_does_not_look(shared: Path, tmp_path: Path) -> None:
    """The pod runs and copies its 00-multus.conf into host /etc/cni/net.d, which k3s's runtime
    never reads: Multus is never called. (The journal's DaemonSet status conflict is a red herring
    of the API server, not shown here.)"""
    with running(shared, "field-03", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        assert node_file(sim, "/etc/cni/net.d/00-multus.conf").is_file()
        assert not node_file(sim, "/var/lib/rancher/k3s/agent/etc/cni/net.d/00-multus.conf").exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-03", findings)
        assert by_field["volume cni"]["current"] == "/etc/cni/net.d/00-multus.conf"
        assert_expected_fix(sim, case, dry_run(sim))


def test_field_04_gke_bin_dir(shared: Path, tmp_path: Path) -> None:
    """The evidence (the kubelet's 'failed to find plugin "multus" in path [/home/kubernetes/bin]'
    for workload pods) is never printed by the Multus pod; what the node shows instead: Multus
    runs, its binary is in /opt/cni/bin and not in /home/kubernetes/bin, where GKE's runtime looks."""
    with running(shared, "field-04", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        assert node_file(sim, "/opt/cni/bin/multus").is_file()
        assert not node_file(sim, "/home/kubernetes/bin/multus").exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-04", findings)
        assert by_field["volume cnibin hostPath"]["expected"] == "/home/kubernetes/bin"
        plan = dry_run(sim)
        assert planned(plan) == {"ds.volume.cnibin.hostPath": "/home/kubernetes/bin"}
        assert_expected_fix(sim, case, plan)


def test_field_05_k3s_bin_dir_pinned_to_a_release_left_behind_by_an_upgrade(shared: Path, tmp_path: Path) -> None:
    """Multus started while data/current pointed at 3ccf8a82 and installed its binary there; k3s was
    then upgraded (current -> 433356f, the stable data/cni, the runtime's bin_dir moved). The report's
    evidence is the kubelet's 'failed to find plugin "multus"' for workload pods, which the Multus
    pod never prints; what the node shows instead: multus only in the old release dir."""
    with running(shared, "field-05", tmp_path) as (sim, case):
        data = "/var/lib/rancher/k3s/data"
        assert main_status(sim)["ready"] is True  # it runs on, on the dir it resolved when it started
        assert node_file(sim, f"{data}/3ccf8a82/bin/multus").is_file()
        assert not node_file(sim, f"{data}/current/bin/multus").exists()
        assert not node_file(sim, f"{data}/cni/multus").exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-05", findings)
        pinned = by_field["volume cnibin hostPath"]
        assert pinned["current"] == f"{data}/current/bin" and "belongs to one release" in pinned["message"]
        plan = dry_run(sim)
        assert planned(plan) == {"ds.volume.cnibin.hostPath": f"{data}/cni"}
        assert_expected_fix(sim, case, plan)


def test_field_06_nad_plugin_with_no_binary_where_k3s_searches(shared: Path, tmp_path: Path) -> None:
    """The NAD's flannel delegates to ipvlan, which neither /opt/cni/bin (Multus's binDir) nor
    k3s's data/cni holds. The runtime error is a workload pod's and not simulated; the NAD and the
    node's bin dirs show it. Installing a binary is a manual step naming the exact host path."""
    with running(shared, "field-06", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-06", findings)
        missing = by_field["plugin ipvlan"]
        want = case.case["expected_fix"]["host.install"]
        assert missing["expected"] == want
        assert missing["object"] == "NetworkAttachmentDefinition kube-system/demo-192-168-0-0"
        assert "[/opt/cni/bin /var/lib/rancher/k3s/data/cni]" in missing["message"]  # the reported search path
        plan = dry_run(sim)
        assert plan["targets"] == []
        assert any(m.startswith("M401") and f"install ipvlan as {want} " in m for m in plan["manual"]), plan
        assert_expected_fix(sim, case, plan)


def test_field_07_thick_delegate_binary_missing_from_opt_cni_bin(shared: Path, tmp_path: Path) -> None:
    """Calico put only its own binaries in /opt/cni/bin; the macvlan NAD's plugin is not there.
    The shim's CmdAdd error is a workload pod's and not simulated; the NAD and the bin dir show it."""
    with running(shared, "field-07", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        assert not node_file(sim, "/opt/cni/bin/macvlan").exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-07", findings)
        missing = by_field["plugin macvlan"]
        want = case.case["expected_fix"]["host.install"]
        assert (missing["expected"], missing["nodes"]) == (want, [NODE])
        assert missing["object"] == "NetworkAttachmentDefinition default/macvlan-conf"
        plan = dry_run(sim)
        assert plan["targets"] == []
        (manual,) = [m for m in plan["manual"] if m.startswith("M401")]
        assert f"install macvlan as {want} " in manual and "containernetworking/plugins" in manual
        assert f"(nodes {NODE})" in manual
        assert_expected_fix(sim, case, plan)


def test_field_08_flag_the_thin_entrypoint_does_not_define(shared: Path, tmp_path: Path) -> None:
    """The chart's hostPaths were k3s's (the kubeconfig flag names the k3s dir); only the
    rendered --cni-namespace-isolation is wrong, and the entrypoint exits at flag parsing."""
    with running(shared, "field-08", tmp_path) as (sim, case):
        assert main_status(sim)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-08", findings)
        unknown = by_field["container kube-multus arg --cni-namespace-isolation"]
        assert case.case["log_lines"][0] in unknown["message"]
        assert previous_log(sim).splitlines()[:2] == case.case["log_lines"]  # what the simulated entrypoint printed
        plan = dry_run(sim)
        assert_expected_fix(sim, case, plan)
        after = plan["targets"][0]["after"]
        assert "--namespace-isolation=true" in after and "--cni-namespace-isolation" not in after


def test_field_09_primary_cni_down_makes_multus_the_victim(shared: Path, tmp_path: Path) -> None:
    """RKE2's canal never starts (here its calico-node command fails), so no 10-canal.conflist is
    written and the thin entrypoint exits 0 with the reporter's lines, over and over. Multus's
    paths are right: the diagnosis names canal's DaemonSet and plans no change to Multus."""
    with running(shared, "field-09", tmp_path) as (sim, case):
        assert main_status(sim)["lastState"]["terminated"]["exitCode"] == 0
        assert previous_log(sim).splitlines()[-len(case.case["log_lines"]) :] == case.case["log_lines"]
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-09", findings)
        down = by_field["status.numberReady"]
        assert down["object"] == "DaemonSet kube-system/rke2-canal" and "victim" in down["message"]
        assert "0 of 1 pods ready" in " ".join(down["evidence"])
        assert by_field["container kube-multus arg --multus-autoconfig-dir"]["current"] == "/host/etc/cni/net.d"
        plan = dry_run(sim)
        assert plan["targets"] == []  # nothing in Multus to change
        assert any(m.startswith("M208") and "fix the primary CNI first" in m for m in plan["manual"])
        assert_expected_fix(sim, case, plan)  # its expected_fix is prose about the primary CNI


def test_field_10_empty_00_multus_conf_left_after_a_reboot(shared: Path, tmp_path: Path) -> None:
    """The daemon runs on while a 0-byte 00-multus.conf, which sorts first, stands before the
    valid 10-calico.conflist. The node's NotReady ('cni plugin not initialized') is the kubelet's
    and is not simulated. `fix` removes the file and restarts that node's Multus, which writes a
    fresh one."""
    with running(shared, "field-10", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        for path in case.case["host_files"]:
            assert node_file(sim, path).is_file(), path
        assert node_file(sim, "/etc/cni/net.d/00-multus.conf").read_bytes() == b""
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-10", findings)
        assert by_field["00-multus.conf"]["object"] == "node file /etc/cni/net.d/00-multus.conf"
        plan = dry_run(sim)
        (removal,) = [t for t in plan["targets"] if t["target"]["kind"] == "NodeFile"]
        path = next(k for k in case.case["expected_fix"] if k.startswith("host.")).removeprefix("host.")
        assert removal["target"] == {"kind": "NodeFile", "node": NODE, "path": path}
        assert [c["value"] for c in removal["changes"]] == [None]  # delete it ...
        assert removal["restart"] == f"restart the Multus pod on node {NODE}"  # ... then restart Multus

        fix_for_real(sim)
        written = json.loads(node_file(sim, path).read_text())
        assert written["clusterNetwork"] == "/host/etc/cni/net.d/10-calico.conflist"
        status, findings = diagnose(sim, case)
        assert status == 0 and not problems(findings), findings


def test_field_11_cilium_renamed_00_multus_conf_away(shared: Path, tmp_path: Path) -> None:
    """Multus wrote 00-multus.conf; Cilium's agent restarted and renamed it to .cilium_bak, so the
    runtime calls 05-cilium.conflist directly: Multus runs, logs nothing wrong, and is never called.
    Fixed for real: the file is put back and Multus restarted. cni-exclusive is Cilium's setting, so
    the plan gives it as a manual step, and M214 stays after the fix: the agent's next restart would
    rename the file again."""
    with running(shared, "field-11", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        conf = "/etc/cni/net.d/00-multus.conf"
        renamed = node_file(sim, f"{conf}.cilium_bak").read_text()
        assert not node_file(sim, conf).exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-11", findings)
        assert (by_field["00-multus.conf"]["current"], by_field["00-multus.conf"]["expected"]) == (
            f"{conf}.cilium_bak",
            conf,
        )
        claim = by_field["cni-exclusive"]
        assert (claim["object"], claim["current"], claim["expected"]) == (
            "ConfigMap kube-system/cilium-config",
            "true",
            "false",
        )
        plan = dry_run(sim)
        assert f"host.{conf}" in case.case["expected_fix"]  # "restore (or restart the Multus pod)"
        (restore,) = plan["targets"]
        assert restore["target"] == {"kind": "NodeFile", "node": NODE, "path": conf}
        assert restore["after"] == renamed and restore["restart"] == f"restart the Multus pod on node {NODE}"
        assert any(m.startswith("M214") and "--set cni.exclusive=false" in m for m in plan["manual"])

        fix_for_real(sim)
        assert json.loads(node_file(sim, conf).read_text())["delegates"][0]["name"] == "cilium"
        assert main_status(sim)["ready"] is True
        status, findings = diagnose(sim, case)
        assert status == 1 and problems(findings) == {("M214", "cni-exclusive")}, findings


def test_field_12_oom_killed_burstable_thick_daemon(shared: Path, tmp_path: Path) -> None:
    """The kernel kills multus-daemon; the pod is Burstable (the upstream init container has
    requests only). The report's socket error is the shim's for workload pods; the simulated kill
    is a SIGKILL, which leaves the socket file behind, and the simulator does not evict, so M304
    (socket absent) is not reproduced here: the replay test covers the evicted pod with no socket,
    and `test_live` a socket gone under a running daemon.
    Fixed for real once the daemon is back: the init container gets limits equal to its
    requests, the pod is Guaranteed, and the diagnosis is clean."""
    with running(shared, "field-12", tmp_path) as (sim, case):
        assert main_status(sim)["lastState"]["terminated"]["reason"] == "OOMKilled"
        assert multus_pod(sim)["status"]["qosClass"] == "Burstable"
        assert node_file(sim, "/run/multus/multus.sock").exists()  # SIGKILL: the stale socket stays
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-12", findings)
        assert by_field["resources"]["current"] == "Burstable" and by_field["resources"]["expected"] == "Guaranteed"
        plan = dry_run(sim)
        want = case.case["expected_fix"]["ds.initContainer.install-multus-binary.resources.limits"]
        assert planned(plan) == {
            f"ds.initContainer.install-multus-binary.resources.limits.{k}": v for k, v in want.items()
        }
        assert_expected_fix(sim, case, plan)

        sim.advance(11)  # the back-off is over: the daemon runs again
        fix_for_real(sim)
        assert multus_pod(sim)["status"]["qosClass"] == "Guaranteed"
        assert main_status(sim)["ready"] is True
        assert node_file(sim, "/run/multus/multus.sock").exists()
        status, findings = diagnose(sim, case)
        assert status == 0 and not problems(findings), findings


def test_field_13_multus_oom_killed_at_the_upstream_50mi_limit(shared: Path, tmp_path: Path) -> None:
    """The daemon needs ~53Mi: the kernel kills it at its 50Mi limit every start. Raising a
    limit is the admin's choice, so the plan lists it as a manual step with the proposed 200Mi."""
    with running(shared, "field-13", tmp_path) as (sim, case):
        status_ = main_status(sim)
        assert status_["lastState"]["terminated"]["reason"] == "OOMKilled" and status_["restartCount"] >= 2
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-13", findings)
        oom = by_field["container kube-multus resources.limits.memory"]
        assert oom["current"] == "50Mi"
        want = case.case["expected_fix"]["ds.container.kube-multus.resources.limits.memory"]
        plan = dry_run(sim)
        assert any(m.startswith("M302") and want in m for m in plan["manual"])
        # and M303's: the init container's limits equal to its requests, so the pod is Guaranteed
        assert planned(plan) == {
            "ds.initContainer.install-multus-binary.resources.limits.cpu": "10m",
            "ds.initContainer.install-multus-binary.resources.limits.memory": "15Mi",
        }


def test_field_14_thick_cniconfigdir_default(shared: Path, tmp_path: Path) -> None:
    """multus-daemon writes 00-multus.conf to its default cniConfigDir /etc/cni/net.d, inside the
    container: the host never sees it. Fixed for real: the daemon config gets the cni mount path."""
    with running(shared, "field-14", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        assert not node_file(sim, "/etc/cni/net.d/00-multus.conf").exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-14", findings)
        assert by_field["daemon-config cniConfigDir"]["current"] is None
        assert_expected_fix(sim, case, dry_run(sim))

        fix_for_real(sim)
        assert json.loads(node_file(sim, "/etc/cni/net.d/00-multus.conf").read_text())["type"] == "multus-shim"
        status, findings = diagnose(sim, case)
        assert status == 0 and not problems(findings), findings


def test_field_15_legacy_flags_of_the_thick_daemon_move_to_its_config(shared: Path, tmp_path: Path) -> None:
    """expected_fix gives `ds.args: []` and a `daemon_config` mapping: every arg removed, every
    key set in daemon-config.json (booleans as JSON booleans)."""
    with running(shared, "field-15", tmp_path) as (sim, case):
        assert main_status(sim)["lastState"]["terminated"]["exitCode"] == 2  # Go's flag package
        status, findings = diagnose(sim, case)
        assert status == 1
        assert_diagnosis("field-15", findings)
        plan = dry_run(sim)
        changes = planned(plan)
        assert case.case["expected_fix"]["ds.args"] == []
        for arg in case.case["daemonset"]["args"]:
            assert changes[f"ds.arg.{arg.split('=')[0]}"] is None, arg
        want = case.case["expected_fix"]["daemon_config"]
        for key, value in want.items():
            assert changes[f"daemon_config.{key}"] == (str(value).lower() if isinstance(value, bool) else value), key
        config = json.loads(next(t["after"] for t in plan["targets"] if t["target"]["kind"] == "ConfigMap"))
        assert {k: config[k] for k in want} == want


def test_field_16_thin_image_in_the_v4_0_2_thick_manifest(shared: Path, tmp_path: Path) -> None:
    """The init container's `cp` is not in the distroless thin image: runc cannot start it."""
    with running(shared, "field-16", tmp_path) as (sim, case):
        init = multus_pod(sim)["status"]["initContainerStatuses"][0]
        assert init["lastState"]["terminated"]["reason"] == "StartError"
        assert case.case["log_lines"][0] in init["lastState"]["terminated"]["message"]
        assert main_status(sim)["state"]["waiting"]["reason"] == "PodInitializing"
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-16", findings)
        assert by_field["image"]["expected"] == case.case["expected_fix"]["ds.image"]
        plan = dry_run(sim)
        assert_expected_fix(sim, case, plan)
        spec = yaml.safe_load(plan["targets"][0]["after"])["spec"]["template"]["spec"]
        assert {c["image"] for c in spec["containers"] + spec["initContainers"]} == {
            case.case["expected_fix"]["ds.image"]
        }


def test_field_17_unprivileged_plugin_installer_on_selinux_nodes(shared: Path, tmp_path: Path) -> None:
    """RKE2's cni-plugins init container is not privileged; on the SELinux-enforcing node it may
    not write the host's /opt/cni/bin, logs the reporter's line and exits 0: Multus runs, macvlan is
    never installed. Fixed for real: privileged, it installs the plugins and the diagnosis is clean."""
    with running(shared, "field-17", tmp_path) as (sim, case):
        assert main_status(sim)["ready"] is True
        assert not node_file(sim, "/opt/cni/bin/macvlan").exists()
        log = sim.kubelet.logs(multus_pod(sim), {"container": ["cni-plugins"]})
        assert log.splitlines() == case.case["log_lines"]
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-17", findings)
        skipped = by_field["container cni-plugins securityContext.privileged"]
        assert case.case["log_lines"][0] in " ".join(skipped["evidence"])
        plan = dry_run(sim)
        assert planned(plan) == {"ds.initContainer.cni-plugins.securityContext.privileged": "true"}
        assert case.case["expected_fix"] == {"ds.initContainer.cni-plugins.securityContext.privileged": True}

        fix_for_real(sim)
        assert node_file(sim, "/opt/cni/bin/macvlan").is_file()
        assert main_status(sim)["ready"] is True
        status, findings = diagnose(sim, case)
        assert status == 0 and not problems(findings), findings


def test_field_18_cni_version_other_than_the_primarys(shared: Path, tmp_path: Path) -> None:
    """OVN-Kubernetes writes cniVersion 0.4.0; --cni-version=0.3.1 makes the thin entrypoint
    refuse to write 00-multus.conf. Fixed for real: without the flag it adopts 0.4.0."""
    with running(shared, "field-18", tmp_path) as (sim, case):
        assert not node_file(sim, "/etc/cni/net.d/00-multus.conf").exists()
        status, findings = diagnose(sim, case)
        assert status == 1
        by_field = assert_diagnosis("field-18", findings)
        mismatch = by_field["container kube-multus arg --cni-version"]
        assert mismatch["current"] == "0.3.1" and "0.4.0" in mismatch["message"]
        assert_expected_fix(sim, case, dry_run(sim))

        fix_for_real(sim)
        assert json.loads(node_file(sim, "/etc/cni/net.d/00-multus.conf").read_text())["cniVersion"] == "0.4.0"
        status, findings = diagnose(sim, case)
        assert status == 0 and not problems(findings), findings


# --- the same cases without their fault --------------------------------------------------------
def _installed(hook: fieldcases.Hook, path: str) -> fieldcases.Hook:
    def extra(f: Field) -> None:
        hook(f)
        f.files[path] = None

    return extra


def _canal_up(f: Field) -> None:
    fieldcases._canal_down(f)
    canal = next(o for o in f.objects if o["metadata"]["name"] == "rke2-canal")
    del canal["spec"]["template"]["spec"]["containers"][0]["command"]  # calico-node runs
    f.files["/etc/cni/net.d/10-canal.conflist"] = json.dumps(fieldcases.CALICO, indent=2)
    for name in ("calico", "calico-ipam"):  # what its install-cni puts beside RKE2's plugins
        f.files[f"/opt/cni/bin/{name}"] = None


def _cilium_not_exclusive(f: fieldcases.Field) -> None:
    fieldcases._cilium_exclusive(f)
    next(o for o in f.objects if o["metadata"]["name"] == "cilium-config")["data"]["cni-exclusive"] = "false"


HEALTHY: dict[str, dict[str, Any]] = {
    "field-05": {"after": None},  # not upgraded: data/current is still the runtime's bin dir
    "field-06": {"extra": _installed(fieldcases._ipvlan_nad, "/var/lib/rancher/k3s/data/cni/ipvlan")},
    "field-07": {"extra": _installed(fieldcases._only_calico_binaries, "/opt/cni/bin/macvlan")},
    "field-09": {"extra": _canal_up},
    "field-11": {"after": None, "extra": _cilium_not_exclusive},  # cni.exclusive=false: the file stays
    "field-12": {"after": None},  # not killed
    "field-17": {"faults": None},  # SELinux not enforcing
}


@pytest.mark.parametrize("case", sorted(HEALTHY))
def test_field_case_without_its_fault_raises_none_of_its_problems(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The negative side of each case above: the same cluster without the fault the report
    describes (no upgrade, the binary installed, the primary CNI up, no rename, no kill, no
    SELinux) gives a clean diagnosis, so the findings above come from the fault alone."""
    monkeypatch.setitem(fieldcases.CASES, case, dataclasses.replace(fieldcases.CASES[case], **HEALTHY[case]))
    sim, f = fieldcases.build(shared, case, tmp_path / "sim")
    with sim:
        fieldcases.settle(sim, f)
        assert main_status(sim)["ready"] is True
        status, findings = diagnose(sim, f)
        assert status == 0 and not problems(findings), findings
