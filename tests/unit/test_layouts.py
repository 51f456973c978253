"""Layouts that are easy to get wrong: each was once misdiagnosed, or its plan would have made things worse."""

from __future__ import annotations

import base64
import json
from typing import Any

from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.install import find_installs
from kubectl_multus.core.planner import applied, build_plan
from kubectl_multus.core.snapshot import Snapshot
from tests import scenarios as sc

K3S_CONF = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
THICK_CONF = {
    "chrootDir": "/hostroot",
    "cniVersion": "0.3.1",
    "cniConfigDir": "/host/etc/cni/net.d",
    "multusAutoconfigDir": "/host/etc/cni/net.d",
    "multusConfigFile": "auto",
    "socketDir": "/host/run/multus/",
}


def hp(name: str, path: str | None) -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": path} if path is not None else None}


def thin(args: list[str], mounts: list[tuple[str, str, str]], volumes: list[dict[str, Any]], **main: Any) -> dict:
    container = {
        "name": "kube-multus",
        "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2",
        "command": ["/thin_entrypoint"],
        "args": args,
        "volumeMounts": [{"name": n, "mountPath": p, **({"subPath": sp} if sp else {})} for n, p, sp in mounts],
    }
    container.update(main)
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-multus-ds", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"name": "multus"}},
            "template": {
                "metadata": {"labels": {"name": "multus"}},
                "spec": {"containers": [container], "volumes": volumes},
            },
        },
    }


def thick(mounts: list[tuple[str, str]], volumes: list[dict[str, Any]]) -> dict:
    ds = thin([], [(n, p, "") for n, p in mounts], volumes)
    c = ds["spec"]["template"]["spec"]["containers"][0]
    c.update(
        command=["/usr/src/multus-cni/bin/multus-daemon"], image="ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2-thick"
    )
    c.pop("args")
    c["volumeMounts"].append({"name": "config", "mountPath": "/etc/cni/net.d/multus.d", "readOnly": True})
    ds["spec"]["template"]["spec"]["volumes"].append(
        {
            "name": "config",
            "configMap": {
                "name": "multus-daemon-config",
                "items": [{"key": "daemon-config.json", "path": "daemon-config.json"}],
            },
        }
    )
    return ds


def cm(conf: dict[str, Any] | None = None, *, binary: bool = False) -> dict[str, Any]:
    text = json.dumps(conf or THICK_CONF, indent=4)
    data = (
        {"binaryData": {"daemon-config.json": base64.b64encode(text.encode()).decode()}}
        if binary
        else {"data": {"daemon-config.json": text}}
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "multus-daemon-config", "namespace": "kube-system"},
        **data,
    }


def snap(
    ds: dict, distro: str = "kubeadm", *, files: dict[str, str | None] | None = None, configmaps=(), nodes: int = 1
) -> Snapshot:
    names = [f"node-{i}" for i in range(1, nodes + 1)]
    content = sc.distro_files(distro) if files is None else files
    return Snapshot(
        "test",
        nodes=tuple(sc.node(n, distro) for n in names),
        daemonsets=(ds,),
        configmaps=tuple(configmaps),
        node_files={n: sc.node_files(content) for n in names},
    )


def problems(report) -> dict[str, str]:
    return {f.field: f.code for f in report.findings if f.severity >= 2}


THICK_MOUNTS = [
    ("cni", "/host/etc/cni/net.d"),
    ("cnibin", "/opt/cni/bin"),
    ("host-run", "/host/run"),
    ("hostroot", "/hostroot"),
]
THICK_VOLUMES = [hp("cni", "/etc/cni/net.d"), hp("cnibin", "/opt/cni/bin"), hp("host-run", "/run"), hp("hostroot", "/")]
UPSTREAM_THIN_ARGS = [
    "--multus-conf-file=auto",
    "--cni-conf-dir=/host/etc/cni/net.d",
    "--multus-autoconfig-dir=/host/etc/cni/net.d",
]
UPSTREAM_VOLUMES = [hp("cni", "/etc/cni/net.d"), hp("cnibin", "/opt/cni/bin")]
UPSTREAM_MOUNTS = [("cni", "/host/etc/cni/net.d", ""), ("cnibin", "/host/opt/cni/bin", "")]


def test_conf_dir_with_no_mount_at_all_is_an_error_without_a_guess():
    s = snap(thin(UPSTREAM_THIN_ARGS, [("cnibin", "/host/opt/cni/bin", "")], [hp("cnibin", "/opt/cni/bin")]))
    report = diagnose(s)
    assert problems(report)["container kube-multus arg --cni-conf-dir"] == "M101"
    finding = next(f for f in report.findings if f.field.endswith("--cni-conf-dir"))
    assert finding.changes == () and "mount hostPath /etc/cni/net.d" in finding.remediation


def test_a_parent_directory_mounted_is_right_when_the_flag_points_below_it():
    s = snap(
        thin(
            UPSTREAM_THIN_ARGS,
            [("cni", "/host/etc/cni", ""), ("cnibin", "/host/opt/cni/bin", "")],
            [hp("cni", "/etc/cni"), hp("cnibin", "/opt/cni/bin")],
        )
    )
    assert diagnose(s).healthy


def test_a_subpath_mount_is_right_and_its_volume_is_never_repointed():
    s = snap(
        thin(
            UPSTREAM_THIN_ARGS,
            [("etc", "/host/etc/cni/net.d", "cni/net.d"), ("cnibin", "/host/opt/cni/bin", "")],
            [hp("etc", "/etc"), hp("cnibin", "/opt/cni/bin")],
        )
    )
    assert diagnose(s).healthy
    on_k3s = snap(s.daemonsets[0], "k3s")
    plan = build_plan(diagnose(on_k3s), on_k3s)
    assert "ds.volume.etc.hostPath" not in {c.key for c in plan.changes}


def test_thick_without_its_conf_mount_does_not_take_over_another_volume():
    mounts = [
        ("cnibin", "/opt/cni/bin"),
        ("host-run", "/host/run"),
        ("hostroot", "/hostroot"),
        ("multus-conf-dir", "/etc/cni/multus/net.d"),
    ]
    vols = [
        hp("cnibin", "/opt/cni/bin"),
        hp("host-run", "/run"),
        hp("hostroot", "/"),
        hp("multus-conf-dir", "/etc/cni/multus/net.d"),
    ]
    s = snap(thick(mounts, vols), configmaps=[cm()])
    report = diagnose(s)
    assert problems(report)["daemon-config cniConfigDir"] == "M101"
    keys = {c.key for c in build_plan(report, s).changes}
    assert "ds.volume.multus-conf-dir.hostPath" not in keys and "daemon_config.cniConfigDir" not in keys


def test_crio_with_plugins_only_in_opt_cni_bin():
    files = {
        "/etc/cni/net.d/11-crio-ipv4-bridge.conflist": json.dumps(sc.FLANNEL),
        **{f"/opt/cni/bin/{p}": None for p in sc.PLUGINS},
    }
    s = snap(thin(UPSTREAM_THIN_ARGS, UPSTREAM_MOUNTS, UPSTREAM_VOLUMES), "crio", files=files)
    assert diagnose(s).healthy


def test_crio_searches_every_plugin_dir_of_its_config_and_drop_ins():
    files = {
        "/etc/cni/net.d/11-crio-ipv4-bridge.conflist": json.dumps(sc.FLANNEL),
        "/etc/crio/crio.conf": '[crio.network]\nplugin_dirs = ["/usr/libexec/cni"]\n',
        "/etc/crio/crio.conf.d/10-crio.conf": '[crio.network]\nplugin_dirs = [\n "/usr/libexec/cni",\n "/opt/cni/bin/",\n]\n',
        **{f"/usr/libexec/cni/{p}": None for p in sc.PLUGINS},
    }
    s = snap(thin(UPSTREAM_THIN_ARGS, UPSTREAM_MOUNTS, UPSTREAM_VOLUMES), "crio", files=files)
    report = diagnose(s)
    assert report.healthy
    assert (
        report.installs[0].nodes[0].dirs_source == "node file /etc/crio/crio.conf, /etc/crio/crio.conf.d/10-crio.conf"
    )


def test_thin_with_a_given_conf_file_ignores_the_autoconfig_and_kubeconfig_flags():
    ds = thin(
        ["--multus-conf-file=/tmp/multus-conf/70-multus.conf"],
        [("cni", "/host/etc/cni/net.d", ""), ("cnibin", "/host/opt/cni/bin", ""), ("cfg", "/tmp/multus-conf", "")],
        [
            hp("cni", K3S_CONF),
            hp("cnibin", "/var/lib/rancher/k3s/data/cni"),
            {"name": "cfg", "configMap": {"name": "multus-cni-config"}},
        ],
    )
    assert diagnose(snap(ds, "k3s")).healthy
    files = sc.distro_files("k3s")
    files[f"{K3S_CONF}/70-multus.conf"] = json.dumps({"type": "multus", "kubeconfig": "/etc/cni/net.d/multus.d/x"})
    report = diagnose(snap(ds, "k3s", files=files))
    (finding,) = [f for f in report.findings if f.severity >= 2]
    assert finding.code == "M204" and finding.changes == () and "--multus-conf-file" in finding.remediation


def test_a_flag_inside_a_shell_script_is_reported_but_never_edited():
    script = "exec /thin_entrypoint --multus-conf-file=auto --cni-conf-dir=/host/etc/cni/net.d/sub"
    ds = thin([], UPSTREAM_MOUNTS, UPSTREAM_VOLUMES, command=["/bin/sh", "-c", script])
    report = diagnose(snap(ds))
    finding = next(f for f in report.findings if f.field.endswith("--cni-conf-dir"))
    assert finding.changes == () and finding.remediation.startswith("edit the shell command")
    assert not build_plan(report, snap(ds)).items


def test_one_fault_on_every_node_is_one_finding_and_one_change():
    conf = dict(THICK_CONF, readinessindicatorfile="/host/etc/cni/net.d/10-calico.conflist")
    s = snap(thick(THICK_MOUNTS, THICK_VOLUMES), configmaps=[cm(conf)], nodes=3)
    report = diagnose(s)
    (finding,) = [f for f in report.findings if f.code == "M112"]
    assert finding.nodes == ("node-1", "node-2", "node-3")
    plan = build_plan(report, s)
    assert not plan.conflicts and [c.key for c in plan.changes] == ["daemon_config.readinessindicatorfile"]
    assert diagnose(applied(s, plan)).healthy


def test_node_affinity_decides_where_multus_runs():
    ds = thin(UPSTREAM_THIN_ARGS, UPSTREAM_MOUNTS, UPSTREAM_VOLUMES)
    ds["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
                ]
            }
        }
    }
    linux, windows = sc.node("linux-1", "kubeadm"), sc.node("win-1", "kubeadm")
    windows["metadata"]["labels"]["kubernetes.io/os"] = "windows"
    s = Snapshot(
        "t",
        nodes=(linux, windows),
        daemonsets=(ds,),
        pods=(sc.pod(ds, "linux-1"),),
        node_files={"linux-1": sc.node_files({**sc.distro_files("kubeadm"), "/etc/cni/net.d/00-multus.conf": "{}"})},
    )
    report = diagnose(s)
    assert [n.name for n in report.installs[0].nodes] == ["linux-1"]
    assert report.healthy


def test_an_unrelated_entrypoint_sh_daemonset_is_not_multus():
    other = thin([], [], [], name="storage-init", image="example.com/storage-init:1", command=["/entrypoint.sh"])
    other["metadata"]["name"] = "storage-init"
    multus = thin(UPSTREAM_THIN_ARGS, UPSTREAM_MOUNTS, UPSTREAM_VOLUMES)
    s = Snapshot("t", nodes=(sc.node("n", "kubeadm"),), daemonsets=(multus, other))
    assert [i.name for i in find_installs(s)] == ["kube-multus-ds"]


def test_odd_but_valid_objects_do_not_crash():
    bare = thin([], [], [hp("cni", None)])  # hostPath: null, no mounts, no args
    diagnose(snap(bare))
    report = diagnose(snap(thick(THICK_MOUNTS, THICK_VOLUMES), configmaps=[cm(binary=True)]))
    assert report.healthy, "a daemon config in binaryData is read like one in data"
