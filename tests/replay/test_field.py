"""Field cases (shared/fixtures/field) that the core covers: the motivating k3s case."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.planner import build_plan
from kubectl_multus.core.snapshot import Entry, Snapshot
from tests import scenarios as sc

# expected_fix keys a plan can be checked against (fixtures README)
CHECKABLE = ("ds.volume.", "ds.mount.", "ds.arg.", "ds.image", "daemon_config.", "multus_conf.", "host.")


def field_snapshot(shared, case: str, base: str) -> tuple[Snapshot, dict]:
    """The case's DaemonSet: the upstream manifest it names, with the reported volumes, mounts and args."""
    data = yaml.safe_load((shared / "field" / f"{case}.yaml").read_text())
    objs = [d for d in yaml.safe_load_all((shared / "upstream" / base).read_text()) if d]
    ds = copy.deepcopy(next(o for o in objs if o["kind"] == "DaemonSet"))
    spec = ds["spec"]["template"]["spec"]
    main = spec["containers"][0]
    reported = data["daemonset"]
    vols = {v["name"]: v for v in spec["volumes"]}
    for v in reported["volumes"] or []:  # null: the report did not say
        if v["hostPath"]:
            vols[v["name"]] = {"name": v["name"], "hostPath": {"path": v["hostPath"]}}
    spec["volumes"] = list(vols.values())
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    for m in reported["mounts"] or []:
        mounts[m["name"]] = {**mounts.get(m["name"], {}), "name": m["name"], "mountPath": m["mountPath"]}
    main["volumeMounts"] = list(mounts.values())
    if reported["args"] is not None:
        main["args"] = list(reported["args"])
    distro = "k3s" if data["distro"].startswith("k3s") else "gke" if data["distro"].startswith("GKE") else "kubeadm"
    node = sc.node("node-1", distro)
    version = re.search(r"v\d+\.\d+\.\d+\+k3s\d+", data["distro"])
    if version:
        node["status"]["nodeInfo"]["kubeletVersion"] = version.group(0)
    elif "v1.28.x" in data["distro"]:
        node["status"]["nodeInfo"]["kubeletVersion"] = "v1.28.15+k3s1"  # "1.28.x": the newest 1.28
    pod = sc.pod(ds, "node-1", running=False, exit_code=0)
    logs = {("kube-system", pod["metadata"]["name"], main["name"], True): "\n".join(data["log_lines"])}
    snap = Snapshot(
        source=case,
        nodes=(node,),
        daemonsets=(ds,),
        configmaps=tuple(o for o in objs if o["kind"] == "ConfigMap"),
        pods=(pod,),
        logs=logs,
    )
    return snap, data


def test_field_01_doubled_k3s_prefix_in_thin_args(shared):
    snap, case = field_snapshot(shared, "field-01", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    report = diagnose(snap)
    by_field = {f.field: f for f in report.findings}
    # "in-pod path setting holds a host path (k3s prefix doubled); path is under no volumeMount"
    for flag in ("--cni-conf-dir", "--multus-autoconfig-dir"):
        f = by_field[f"container kube-multus arg {flag}"]
        assert f.code == "M103"
        assert "host path" in f.message and "no volume mount" in f.message
        assert "/var/lib/rancher/k3s/agent repeated" in f.message
    assert any("cni-conf-dir is not found" in e for e in by_field["container kube-multus arg --cni-conf-dir"].evidence)
    # the kubeconfig flag is a host path whose default does not exist on k3s
    assert by_field["container kube-multus arg --multus-kubeconfig-file-host"].code == "M105"
    # the cni hostPath was right: no finding on it
    assert "volume cni hostPath" not in by_field

    plan = build_plan(report, snap)
    planned = {c.key: c.value for c in plan.changes}
    ds_after = yaml.safe_load(plan.items[0].after)
    host_paths = {v["name"]: v.get("hostPath", {}).get("path") for v in ds_after["spec"]["template"]["spec"]["volumes"]}
    for key, value in case["expected_fix"].items():
        if not key.startswith(CHECKABLE):
            continue
        if key.startswith("ds.volume."):
            assert host_paths[key.split(".")[2]] == value, key  # kept as it was
        else:
            assert planned[key] == value, key


@pytest.mark.parametrize("case", ["field-14"])
def test_field_14_thick_cniconfigdir_default(shared, case):
    """multus-daemon defaults cniConfigDir to /etc/cni/net.d, which in the pod is not the host mount."""
    objs = [
        d
        for d in yaml.safe_load_all(
            (shared / "upstream" / "k8snetworkplumbingwg-multus-cni/multus-daemonset-thick.yml").read_text()
        )
        if d
    ]
    data = yaml.safe_load((shared / "field" / f"{case}.yaml").read_text())
    import json

    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    cm["data"]["daemon-config.json"] = json.dumps(data["daemon_config"], indent=4)
    report = diagnose(sc.manifest_snapshot(objs, "kubeadm"))
    f = next(f for f in report.findings if f.field == "daemon-config cniConfigDir")
    assert f.code == "M101" and f.current is None and f.expected == data["expected_fix"]["daemon_config.cniConfigDir"]


def _planned(report, snap) -> dict[str, str | None]:
    return {c.key: c.value for c in build_plan(report, snap).changes}


def test_field_02_vanilla_paths_on_old_k3s(shared):
    """k3s v1.19: the runtime reads the k3s conf dir, and its binaries live in the versioned data/current/bin."""
    snap, case = field_snapshot(shared, "field-02", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    report = diagnose(snap)
    codes = {f.field: f.code for f in report.findings}
    assert codes["volume cni hostPath"] == "M107" and codes["volume cnibin hostPath"] == "M108"
    assert codes["container kube-multus arg --multus-kubeconfig-file-host"] == "M105"
    planned = _planned(report, snap)
    for key in ("ds.volume.cni.hostPath", "ds.volume.cnibin.hostPath"):
        assert planned[key] == case["expected_fix"][key]
    # the kubeconfig the generated 00-multus.conf names (multus_conf.kubeconfig) comes from this flag
    assert planned["ds.arg.--multus-kubeconfig-file-host"] == case["expected_fix"]["multus_conf.kubeconfig"]


def test_field_03_multus_conf_copied_where_k3s_does_not_look(shared):
    snap, case = field_snapshot(shared, "field-03", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    # the reporter's ConfigMap volume presented the file as 00-multus.conf
    for v in snap.daemonsets[0]["spec"]["template"]["spec"]["volumes"]:
        if v["name"] == "multus-cfg":
            v["configMap"]["items"][0]["path"] = "00-multus.conf"
    report = diagnose(snap)
    assert {f.code for f in report.findings if f.field == "volume cni hostPath"} == {"M107"}
    planned = _planned(report, snap)
    for key, value in case["expected_fix"].items():
        assert planned[key] == value, key


def test_field_04_gke_bin_dir(shared):
    snap, case = field_snapshot(shared, "field-04", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    report = diagnose(snap)
    assert report.installs[0].nodes[0].distribution == "gke"
    f = next(f for f in report.findings if f.field == "volume cnibin hostPath")
    assert f.code == "M108" and f.expected == "/home/kubernetes/bin"
    assert "volume cni hostPath" not in {f.field for f in report.findings}
    assert _planned(report, snap) == {"ds.volume.cnibin.hostPath": case["expected_fix"]["ds.volume.cnibin.hostPath"]}


def test_field_08_flag_the_thin_entrypoint_does_not_define(shared):
    snap, case = field_snapshot(shared, "field-08", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    report = diagnose(snap)
    unknown = [f for f in report.findings if f.code == "M115"]
    assert [f.field for f in unknown] == ["container kube-multus arg --cni-namespace-isolation"]
    planned = _planned(report, snap)
    for key, value in case["expected_fix"].items():
        if key.startswith(CHECKABLE):
            assert planned[key] == value, key
    after = build_plan(report, snap).items[0].after
    assert "--namespace-isolation=true" in after and "--cni-namespace-isolation" not in after


def test_field_15_legacy_flags_of_the_thick_daemon_move_to_its_config(shared):
    snap, case = field_snapshot(shared, "field-15", "k8snetworkplumbingwg-multus-cni/multus-daemonset-thick.yml")
    report = diagnose(snap)
    unknown = sorted(f.current or "" for f in report.findings if f.code == "M115")
    assert unknown == sorted(case["daemonset"]["args"])
    planned = _planned(report, snap)
    assert all(planned[f"ds.arg.{a.split('=')[0]}"] is None for a in case["daemonset"]["args"])
    for key, value in case["expected_fix"]["daemon_config"].items():
        assert planned[f"daemon_config.{key}"] == (str(value).lower() if isinstance(value, bool) else value), key
    config = json.loads(next(i for i in build_plan(report, snap).items if i.target.kind == "ConfigMap").after)
    assert {k: config[k] for k in case["expected_fix"]["daemon_config"]} == case["expected_fix"]["daemon_config"]


def test_field_10_empty_00_multus_conf_left_after_a_reboot(shared):
    """Calico rewrote its conflist while the thick daemon started: a 0-byte 00-multus.conf stays,
    and the runtime loads it first (M206; the fix removes it and restarts that node's Multus)."""
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-10", "k8snetworkplumbingwg-multus-cni/multus-daemonset-thick.yml")
    calico = json.dumps(
        {"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": [{"type": "calico"}, {"type": "portmap"}]}
    )
    files = {
        "/etc/cni/net.d/00-multus.conf": "",
        "/etc/cni/net.d/10-calico.conflist": calico,
        "/etc/cni/net.d/calico-kubeconfig": "x",
    }
    assert sorted(files) == sorted(case["host_files"])
    snap = replace(snap, node_files={"node-1": sc.node_files(files, ["/opt/cni/bin"])})
    report = diagnose(snap)
    broken = [f for f in report.findings if f.code == "M206"]
    assert [f.object for f in broken] == ["node file /etc/cni/net.d/00-multus.conf"] and broken[0].nodes == ("node-1",)
    plan = build_plan(report, snap, "node-1")
    removal = [i for i in plan.items if i.target.path == "/etc/cni/net.d/00-multus.conf"]
    assert (
        len(removal) == 1 and removal[0].after == "" and "restart the Multus pod on node node-1" in removal[0].restart
    )


def test_field_18_cni_version_other_than_the_primarys(shared):
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-18", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    ovn = json.dumps({"cniVersion": "0.4.0", "name": "ovn-kubernetes", "type": "ovn-k8s-cni-overlay"})
    with_files = replace(
        snap, node_files={"node-1": sc.node_files({"/etc/cni/net.d/10-ovn-kubernetes.conf": ovn}, ["/opt/cni/bin"])}
    )
    for snapshot in (snap, with_files):  # from the log line alone, and from the node's files
        report = diagnose(snapshot)
        mismatch = [f for f in report.findings if f.code == "M116"]
        assert len(mismatch) == 1 and mismatch[0].current == "0.3.1" and "0.4.0" in mismatch[0].message
        planned = _planned(report, snapshot)
        assert planned["ds.arg.--cni-version"] == case["expected_fix"]["ds.arg.--cni-version"]
    same = json.dumps({"cniVersion": "0.3.1", "name": "ovn-kubernetes", "type": "ovn-k8s-cni-overlay"})
    agreeing = replace(
        with_files,
        logs={},
        node_files={"node-1": sc.node_files({"/etc/cni/net.d/10-ovn-kubernetes.conf": same}, ["/opt/cni/bin"])},
    )
    assert not [f for f in diagnose(agreeing).findings if f.code == "M116"]


def test_field_13_multus_oom_killed_at_the_upstream_50mi_limit(shared):
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-13", "k8snetworkplumbingwg-multus-cni/multus-daemonset-thick.yml")
    pod = copy.deepcopy(snap.pods[0])
    pod["status"]["containerStatuses"][0]["lastState"]["terminated"].update(exitCode=137, reason="OOMKilled")
    report = diagnose(replace(snap, pods=(pod,)))
    oom = [f for f in report.findings if f.code == "M302"]
    assert len(oom) == 1 and oom[0].current == "50Mi" and oom[0].nodes == ("node-1",)
    assert case["expected_fix"]["ds.container.kube-multus.resources.limits.memory"] in oom[0].remediation
    assert not [f for f in diagnose(snap).findings if f.code == "M302"]  # an ordinary crash is not an OOM kill


def test_field_16_thin_image_in_the_v4_0_2_thick_manifest(shared):
    snap, case = field_snapshot(shared, "field-16", "k8snetworkplumbingwg-multus-cni/multus-daemonset-thick.v4.0.2.yml")
    ds = copy.deepcopy(snap.daemonsets[0])
    spec = ds["spec"]["template"]["spec"]
    for c in spec["containers"] + spec["initContainers"]:
        c["image"] = "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.0.2"  # what the reporter deployed
    report = diagnose(Snapshot("field-16", nodes=snap.nodes, daemonsets=(ds,), configmaps=snap.configmaps))
    flavour = [f for f in report.findings if f.code == "M117"]
    assert len(flavour) == 1 and flavour[0].expected == case["expected_fix"]["ds.image"]
    after = yaml.safe_load(
        build_plan(report, Snapshot("x", nodes=snap.nodes, daemonsets=(ds,), configmaps=snap.configmaps)).items[0].after
    )
    images = {
        c["image"]
        for c in after["spec"]["template"]["spec"]["containers"] + after["spec"]["template"]["spec"]["initContainers"]
    }
    assert images == {case["expected_fix"]["ds.image"]}
    assert not [f for f in diagnose(snap).findings if f.code == "M117"]  # the manifest as shipped (-thick) is fine


def _canal(ready: int, desired: int) -> dict:
    """RKE2's canal DaemonSet (calico-node and flannel in one pod), with its status counts."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "rke2-canal", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "canal"}},
            "template": {
                "spec": {
                    "containers": [
                        {"name": "calico-node", "image": "rancher/hardened-calico:v3.29.2-build20250306"},
                        {"name": "kube-flannel", "image": "rancher/hardened-flannel:v0.26.5-build20250306"},
                    ]
                }
            },
        },
        "status": {"desiredNumberScheduled": desired, "numberReady": ready, "numberAvailable": ready},
    }


def test_field_09_primary_cni_down_makes_multus_the_victim(shared):
    """RKE2 on RHEL 10: canal crash-loops, never writes its conflist; Multus only reports the missing master."""
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-09", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    node = sc.node("node-1", "rke2")
    files = {path: "x" for path in case["host_files"]}
    with_files = replace(
        snap, nodes=(node,), node_files={"node-1": sc.node_files(files, ["/etc/cni/net.d", "/opt/cni/bin"])}
    )
    for base in (snap, with_files):  # from the log line alone, and from the node's files
        broken = replace(base, daemonsets=(*base.daemonsets, _canal(0, 1)))
        report = diagnose(broken)
        down = [f for f in report.findings if f.code == "M208"]
        assert len(down) == 1 and down[0].object == "DaemonSet kube-system/rke2-canal", report.findings
        assert "canal" in down[0].message and "victim" in down[0].message
        assert "0 of 1 pods ready" in " ".join(down[0].evidence)
        assert "Multus recovers once its config appears" in down[0].remediation
        assert any("fix the primary CNI first" in m for m in build_plan(report, broken).manual)
        # no DaemonSet of a primary CNI visible: a check by hand, never silence
        unseen = [f for f in diagnose(base).findings if f.code in ("M208", "M209")]
        assert [f.code for f in unseen] == ["M209"] and "kubectl get pods -A" in unseen[0].remediation
    healthy = replace(with_files, daemonsets=(*snap.daemonsets, _canal(1, 1)))
    conflist = json.dumps({"name": "k8s-pod-network", "cniVersion": "1.0.0", "plugins": [{"type": "calico"}]})
    healthy = replace(
        healthy,
        node_files={"node-1": sc.node_files({**files, "/etc/cni/net.d/10-canal.conflist": conflist}, ["/opt/cni/bin"])},
        logs={},
    )
    assert not [f for f in diagnose(healthy).findings if f.code in ("M208", "M209")]


def _cilium_case(shared, exclusive: str | None):
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-11", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    cilium_ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "cilium", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "cilium"}},
            "template": {"spec": {"containers": [{"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.11.6"}]}},
        },
        "status": {"desiredNumberScheduled": 1, "numberReady": 1},
    }
    cms = snap.configmaps
    if exclusive is not None:
        cms = (
            *cms,
            {"metadata": {"name": "cilium-config", "namespace": "kube-system"}, "data": {"cni-exclusive": exclusive}},
        )
    cilium = json.dumps({"cniVersion": "0.3.1", "name": "cilium", "type": "cilium-cni", "enable-debug": False})
    multus = json.dumps(
        {
            "cniVersion": "0.3.1",
            "name": "multus-cni-network",
            "type": "multus",
            "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
            "delegates": [json.loads(cilium)],
        }
    )
    files = {
        "/etc/cni/net.d/05-cilium.conflist": cilium,
        "/etc/cni/net.d/00-multus.conf.cilium_bak": multus,
        "/etc/cni/net.d/multus.d/multus.kubeconfig": "apiVersion: v1\nkind: Config\n",
    }
    assert sorted(files) == sorted(case["host_files"])
    running = sc.pod(snap.daemonsets[0], "node-1")  # Running, no errors, no logs
    snap = replace(
        snap,
        daemonsets=(*snap.daemonsets, cilium_ds),
        configmaps=cms,
        pods=(running,),
        logs={},
        node_files={"node-1": sc.node_files(files, ["/opt/cni/bin"])},
    )
    return snap, case, multus


def test_field_11_cilium_renamed_00_multus_conf_away(shared):
    snap, case, multus = _cilium_case(shared, "true")
    report = diagnose(snap)
    renamed = [f for f in report.findings if f.code == "M207"]
    assert len(renamed) == 1, report.findings
    f = renamed[0]
    assert f.current == "/etc/cni/net.d/00-multus.conf.cilium_bak" and f.expected == "/etc/cni/net.d/00-multus.conf"
    assert "05-cilium.conflist" in f.message and "Cilium" in f.message
    assert any("cni-exclusive: true" in e and "kube-system/cilium-config" in e for e in f.evidence)
    assert "M203" not in {x.code for x in report.findings}  # M207 explains the missing file
    claim = [x for x in report.findings if x.code == "M214"]
    assert len(claim) == 1 and claim[0].current == "true" and claim[0].expected == "false"
    plan = build_plan(report, snap, "node-1")
    restored = [i for i in plan.items if i.target.path == "/etc/cni/net.d/00-multus.conf"]
    assert "host./etc/cni/net.d/00-multus.conf" in case["expected_fix"]
    assert len(restored) == 1 and restored[0].before == "" and restored[0].after == multus
    assert "restart the Multus pod on node node-1" in restored[0].restart
    assert any("--set cni.exclusive=false" in m and 'cni-exclusive: "false"' in m for m in plan.manual)
    # once written back, nothing is renamed away any more (cni-exclusive itself stays a manual step)
    from kubectl_multus.core.planner import applied

    after = diagnose(applied(snap, plan))
    assert not [x for x in after.findings if x.code == "M207"]
    # ...but the next agent restart renames it again: M214 stays until cni-exclusive is false
    assert [x.current for x in after.findings if x.code == "M214"] == ["true"]


def test_field_11_variants_cilium_setting_unknown_or_off(shared):
    snap, _, _ = _cilium_case(shared, None)  # cilium-config not visible: say so, still restore
    report = diagnose(snap)
    assert [f.code for f in report.findings if f.code in ("M207", "M214")] == ["M207", "M214"]
    claim = next(f for f in report.findings if f.code == "M214")
    assert claim.current is None and "could not be read" in claim.message
    snap, _, _ = _cilium_case(shared, "false")  # renamed by an earlier run: restore, nothing to change in Cilium
    codes = {f.code for f in diagnose(snap).findings}
    assert "M207" in codes and "M214" not in codes


# --- CNI plugin binaries (M401) ----------------------------------------------------------------


def _nad(namespace: str, name: str, config: dict) -> dict:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"config": json.dumps(config)},
    }


def _workload(namespace: str, name: str, networks: str, phase: str = "Pending") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": {"k8s.v1.cni.cncf.io/networks": networks}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "busybox"}]},
        "status": {"phase": phase},
    }


def _manual_installs(report, snap) -> str:
    return "\n".join(build_plan(report, snap).manual)


def test_field_05_k3s_hash_bin_dir_left_behind_by_an_upgrade(shared):
    """The runtime searched the old data/<hash>/bin for multus: the cnibin hostPath went through k3s's
    per-release dir (the report does not quote it; `current` is what resolves to that hash)."""
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-05", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    ds = copy.deepcopy(snap.daemonsets[0])
    for v in ds["spec"]["template"]["spec"]["volumes"]:
        if v["name"] == "cnibin":
            v["hostPath"]["path"] = "/var/lib/rancher/k3s/data/current/bin"
    files = sc.node_files(
        {
            **sc.distro_files("k3s"),  # this k3s has the stable data/cni (it is new enough)
            "/var/lib/rancher/k3s/data/3ccf8a82/bin/multus": None,
            "/var/lib/rancher/k3s/data/433356f/bin/flannel": None,
        }
    )
    files = replace(
        files, entries={**files.entries, "/var/lib/rancher/k3s/data/current": Entry("link", target="433356f")}
    )
    for with_files in (True, False):
        s = replace(snap, daemonsets=(ds,), node_files={"node-1": files} if with_files else {})
        report = diagnose(s)
        pinned = next(f for f in report.findings if f.field == "volume cnibin hostPath")
        assert pinned.code == "M113"
        assert any(case["log_lines"][0] in e for e in pinned.evidence)  # the log is its evidence
        assert not [f for f in report.findings if f.code == "M202"]  # not left as an unexplained log line
        planned = _planned(report, s)
        if with_files:
            assert planned["ds.volume.cnibin.hostPath"] == case["expected_fix"]["ds.volume.cnibin.hostPath"]
        else:  # without the node's files nobody knows this k3s has data/cni yet: no automatic change
            assert "ds.volume.cnibin.hostPath" not in planned


# The Longhorn storage-network test's NAD: flannel with an ipvlan delegate (flannel runs the delegate
# through the same search path, hence Multus's "failed to delegate add").
IPVLAN_NAD = {
    "cniVersion": "0.3.1",
    "type": "flannel",
    "subnetFile": "/run/flannel/multus-subnet-192.168.0.0.env",
    "dataDir": "/var/lib/cni/multus-subnet-192.168.0.0",
    "delegate": {"type": "ipvlan", "master": "eth1", "mode": "l3", "capabilities": {"ips": True}},
}


def test_field_06_nad_type_with_no_binary_where_k3s_searches(shared):
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-06", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    nad = _nad("kube-system", "demo-192-168-0-0", IPVLAN_NAD)
    pod = _workload(
        "longhorn-system",
        "instance-manager-0",
        '[{"name": "demo-192-168-0-0", "namespace": "kube-system", "interface": "lhnet1"}]',
    )
    k3s_bin = "/var/lib/rancher/k3s/data/cni"
    node = {
        **sc.distro_files("k3s"),  # k3s's data/cni: flannel, bridge, host-local, ... but no ipvlan
        "/opt/cni/bin/multus": None,  # the upstream manifest's cnibin on k3s
    }
    expected = case["expected_fix"]["host.install"]
    for files in ({"node-1": sc.node_files(node)}, {}):  # the node's listing, or the log line alone
        s = replace(snap, others=(nad,), workloads=(pod,), node_files=files)
        report = diagnose(s)
        missing = [f for f in report.findings if f.code == "M401"]
        assert [(f.field, f.expected) for f in missing] == [("plugin ipvlan", expected)]
        assert any(case["log_lines"][0].split(": ")[-1] in e for e in missing[0].evidence)
        assert "[/opt/cni/bin /var/lib/rancher/k3s/data/cni]" in missing[0].message  # the path Multus searches
        assert expected in _manual_installs(report, s)
        if files:
            assert missing[0].object == "NetworkAttachmentDefinition kube-system/demo-192-168-0-0"
            assert (
                "NetworkAttachmentDefinition kube-system/demo-192-168-0-0: flannel delegate type ipvlan"
                in missing[0].evidence
            )
        assert not [f for f in report.findings if f.code in ("M404", "M405", "M202")]
    healthy = replace(
        snap, others=(nad,), logs={}, node_files={"node-1": sc.node_files({**node, f"{k3s_bin}/ipvlan": None})}
    )
    assert not [f for f in diagnose(healthy).findings if f.code == "M401"]


CALICO = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {
            "type": "calico",
            "ipam": {"type": "calico-ipam"},
            "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
        },
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        {"type": "bandwidth", "capabilities": {"bandwidth": True}},
    ],
}
MACVLAN_NAD = {
    "cniVersion": "0.3.0",
    "type": "macvlan",
    "master": "eth0",
    "mode": "bridge",
    "ipam": {
        "type": "host-local",
        "subnet": "192.168.1.0/24",
        "rangeStart": "192.168.1.200",
        "rangeEnd": "192.168.1.216",
    },
}


def test_field_07_thick_delegate_binary_missing_from_opt_cni_bin(shared):
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-07", "k8snetworkplumbingwg-multus-cni/multus-daemonset-thick.yml")
    nad = _nad("default", "macvlan-conf", MACVLAN_NAD)
    calico_bins = ("calico", "calico-ipam", "portmap", "bandwidth", "host-local", "loopback", "multus-shim", "passthru")
    node = {
        "/etc/cni/net.d/10-calico.conflist": json.dumps(CALICO),
        **{f"/opt/cni/bin/{b}": None for b in calico_bins},
    }
    assert "/etc/cni/net.d/10-calico.conflist" in case["host_files"]
    s = replace(
        snap,
        others=(nad,),
        workloads=(_workload("default", "samplepod", "macvlan-conf"),),
        node_files={"node-1": sc.node_files(node)},
    )
    report = diagnose(s)
    missing = [f for f in report.findings if f.code == "M401"]
    expected = case["expected_fix"]["host.install"]
    assert [(f.field, f.expected, f.nodes) for f in missing] == [("plugin macvlan", expected, ("node-1",))]
    assert missing[0].object == "NetworkAttachmentDefinition default/macvlan-conf"
    assert any(case["log_lines"][0].split("CmdAdd")[0] in e for e in missing[0].evidence)  # the log line
    assert "host /opt/cni/bin: bandwidth, calico" in "\n".join(missing[0].evidence)  # what was searched
    manual = _manual_installs(report, s)
    assert expected in manual and "(nodes node-1)" in manual and "containernetworking/plugins" in manual
    # Installed: nothing left, the log line included (it is from before the install).
    fixed = replace(s, node_files={"node-1": sc.node_files({**node, "/opt/cni/bin/macvlan": None})})
    assert not [f for f in diagnose(fixed).findings if f.code in ("M401", "M202")]


def _evicted(pod: dict) -> dict:
    """The pod as the kubelet's eviction manager leaves it: Failed, reason Evicted, containers killed."""
    pod = copy.deepcopy(pod)
    main = pod["status"]["containerStatuses"][0]
    main.update(ready=False, state={"terminated": {"exitCode": 137, "reason": "Error"}}, lastState={})
    pod["status"].update(
        phase="Failed",
        reason="Evicted",
        message="The node was low on resource: memory. Threshold quantity: 100Mi, available: 92160Ki. "
        "Container kube-multus was using 39996Ki, request is 50Mi, has larger consumption of memory.",
    )
    return pod


def _thick_node_files(socket: bool):
    from kubectl_multus.core.snapshot import NodeFiles

    files = sc.node_files(
        {**sc.distro_files("kubeadm"), **({"/run/multus/multus.sock": ""} if socket else {})}, ["/run/multus"]
    )
    # as a live capture records them: the config trees, the bin dir and the socket dir, listed
    return NodeFiles(files.entries, ("/etc/cni/net.d", "/opt/cni/bin", "/run/multus"))


def test_field_12_burstable_thick_daemon_evicted_leaves_no_socket(shared):
    from dataclasses import replace

    snap, case = field_snapshot(shared, "field-12", "k8snetworkplumbingwg-multus-cni/multus-daemonset-thick.yml")
    broken = replace(snap, pods=(_evicted(snap.pods[0]),), node_files={"node-1": _thick_node_files(socket=False)})
    report = diagnose(broken)
    codes = {f.code: f for f in report.findings}
    # "multus daemon pod not Ready on node (OOM/evicted)"
    assert codes["M201"].nodes == ("node-1",) and "Evicted" in codes["M201"].message
    # "socket absent": the node's /run/multus holds no multus.sock (why the daemon being down breaks
    # every pod), and the shim's own error names it
    assert any(e.startswith("host /run/multus: ") and "no multus.sock" in e for e in codes["M201"].evidence)
    sock = codes["M304"]
    assert sock.current == "/run/multus/multus.sock" and sock.nodes == ("node-1",)
    assert any("dial unix /run/multus/multus.sock" in e for e in sock.evidence)
    # "pod QoS Burstable": raised to a warning because the pod was evicted and OOM-killed
    qos = codes["M303"]
    assert qos.severity == 2 and qos.current == "Burstable"
    assert any("Evicted" in e for e in qos.evidence) and any("(multus-daemon)" in e for e in qos.evidence)
    planned = _planned(report, broken)
    limits = case["expected_fix"]["ds.initContainer.install-multus-binary.resources.limits"]
    assert {
        r: planned[f"ds.initContainer.install-multus-binary.resources.limits.{r}"] for r in ("cpu", "memory")
    } == limits
    after = yaml.safe_load(build_plan(report, broken).items[0].after)
    from kubectl_multus.core.podchecks import qos as qos_class

    spec = after["spec"]["template"]["spec"]
    assert qos_class(spec["containers"] + spec["initContainers"]) == "Guaranteed"

    # healthy: the daemon runs and its socket is there; nothing of this is raised
    healthy = replace(
        snap, pods=(sc.pod(snap.daemonsets[0], "node-1"),), logs={}, node_files={"node-1": _thick_node_files(True)}
    )
    assert not {"M201", "M303", "M304"} & {f.code for f in diagnose(healthy).findings}
    # evicted, but Guaranteed: nothing to raise about QoS (the eviction itself stays M201)
    guaranteed = apply_to_daemonset_changes(broken, build_plan(report, broken))
    assert "M303" not in {f.code for f in diagnose(guaranteed).findings}


def apply_to_daemonset_changes(snap: Snapshot, plan) -> Snapshot:
    from kubectl_multus.core.planner import applied

    return applied(snap, plan)


def _rke2_builtin(thin: dict) -> dict:
    """RKE2's built-in multus (rke2-multus chart, HelmChart kube-system/rke2-multus): the thin
    DaemonSet plus the unprivileged `cni-plugins` init container that installs the reference plugins."""
    ds = copy.deepcopy(thin)
    ds["metadata"]["name"] = "rke2-multus"
    ds["metadata"]["annotations"] = {
        "meta.helm.sh/release-name": "rke2-multus",
        "meta.helm.sh/release-namespace": "kube-system",
    }
    ds["metadata"]["labels"] = {**ds["metadata"].get("labels", {}), "app.kubernetes.io/managed-by": "Helm"}
    ds["spec"]["template"]["spec"]["initContainers"] = [
        {
            "name": "cni-plugins",
            "image": "rancher/hardened-cni-plugins:v1.9.1-build20260819",
            "env": [{"name": "SKIP_CNI_BINARIES", "value": "flannel"}],
            "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
        }
    ]
    return ds


def test_field_17_rke2_cni_plugins_init_container_skips_a_non_writeable_bin_dir(shared):
    from dataclasses import replace

    from kubectl_multus.core.ownership import owner

    snap, case = field_snapshot(shared, "field-17", "k8snetworkplumbingwg-multus-cni/multus-daemonset.yml")
    ds = _rke2_builtin(snap.daemonsets[0])
    pod = sc.pod(ds, "node-1")  # Running: the init container exited 0 after the warning
    chart = {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "rke2-multus", "namespace": "kube-system"},
    }
    key = ("kube-system", pod["metadata"]["name"], "cni-plugins", False)
    broken = replace(
        snap,
        nodes=(sc.node("node-1", "rke2"),),
        daemonsets=(ds,),
        pods=(pod,),
        others=(chart,),
        logs={key: "\n".join(case["log_lines"])},
    )
    report = diagnose(broken)
    skipped = [f for f in report.findings if f.code == "M305"]
    assert len(skipped) == 1 and skipped[0].field == "container cni-plugins securityContext.privileged"
    assert "/host/opt/cni/bin" in skipped[0].message and "non-writeable" in skipped[0].evidence[0]
    assert "M306" not in {f.code for f in report.findings}  # decided, not left to a manual check
    plan = build_plan(report, broken)
    assert _planned(report, broken)["ds.initContainer.cni-plugins.securityContext.privileged"] == "true"
    after = yaml.safe_load(plan.items[0].after)
    assert after["spec"]["template"]["spec"]["initContainers"][0]["securityContext"] == {"privileged": True}
    own = owner(ds, broken.others)  # the built-in chart: fix warns that the Helm controller reverts it
    assert own is not None and own.kind == "helmchart" and own.name == "rke2-multus"

    # healthy: the same chart with the plugins installed (no warning in the log) raises nothing
    quiet = replace(broken, logs={key: "installing macvlan\ninstalling ipvlan"})
    assert not {"M305", "M306"} & {f.code for f in diagnose(quiet).findings}
    # privileged already: the line cannot be SELinux refusing an unconfined container; not ours to flag
    ds_priv = copy.deepcopy(ds)
    ds_priv["spec"]["template"]["spec"]["initContainers"][0]["securityContext"] = {"privileged": True}
    assert "M305" not in {f.code for f in diagnose(replace(broken, daemonsets=(ds_priv,))).findings}
