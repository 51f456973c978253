"""Field cases (shared/fixtures/field) that the core covers: the motivating k3s case."""

from __future__ import annotations

import copy

import pytest
import yaml

from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.planner import build_plan
from kubectl_multus.core.snapshot import Snapshot
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
    for v in reported["volumes"]:
        if v["hostPath"]:
            vols[v["name"]] = {"name": v["name"], "hostPath": {"path": v["hostPath"]}}
    spec["volumes"] = list(vols.values())
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    for m in reported["mounts"]:
        mounts[m["name"]] = {**mounts.get(m["name"], {}), "name": m["name"], "mountPath": m["mountPath"]}
    main["volumeMounts"] = list(mounts.values())
    if reported["args"] is not None:
        main["args"] = list(reported["args"])
    distro = "k3s" if data["distro"].startswith("k3s") else "kubeadm"
    node = sc.node("node-1", distro)
    if "v1.28" in data["distro"]:
        node["status"]["nodeInfo"]["kubeletVersion"] = "v1.28.15+k3s1"
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
