"""Builders for snapshots in tests: nodes of each distribution, node files, pods, and the
shared fixtures (observed scenarios, upstream manifests, field cases) turned into snapshots."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from kubectl_multus.core.snapshot import Entry, NodeFiles, Snapshot

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KUBECTL_MULTUS_SHARED", REPO.parent / "shared")) / "fixtures"

FLANNEL = {
    "name": "cbr0",
    "cniVersion": "1.0.0",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "forceAddress": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
PLUGINS = ("bridge", "host-local", "loopback", "portmap", "flannel", "macvlan", "bandwidth", "multus", "multus-shim")
# What a node whose primary network is flannel has in its runtime bin dir (before Multus).
PRIMARY_PLUGINS = ("flannel", "bridge", "host-local", "portmap", "loopback")

# distribution -> (kubelet version, providerID prefix, labels, conf dir, bin dir, runtime)
DISTROS: dict[str, dict[str, Any]] = {
    "k3s": {
        "kubelet": "v1.31.4+k3s1",
        "provider": "k3s://",
        "conf": "/var/lib/rancher/k3s/agent/etc/cni/net.d",
        "bin": "/var/lib/rancher/k3s/data/cni",
    },
    "rke2": {"kubelet": "v1.33.5+rke2r1", "provider": "rke2://", "conf": "/etc/cni/net.d", "bin": "/opt/cni/bin"},
    "kubeadm": {
        "kubelet": "v1.31.2",
        "labels": {"node-role.kubernetes.io/control-plane": ""},
        "conf": "/etc/cni/net.d",
        "bin": "/opt/cni/bin",
    },
    "kind": {"kubelet": "v1.31.2", "provider": "kind://docker/kind/", "conf": "/etc/cni/net.d", "bin": "/opt/cni/bin"},
    "crio": {"kubelet": "v1.31.2", "runtime": "cri-o://1.31.1", "conf": "/etc/cni/net.d", "bin": "/usr/libexec/cni"},
    "gke": {
        "kubelet": "v1.27.3-gke.100",
        "provider": "gce://project/us-central1-a/",
        "labels": {"cloud.google.com/gke-nodepool": "default-pool"},
        "conf": "/etc/cni/net.d",
        "bin": "/home/kubernetes/bin",
    },
    "k0s": {"kubelet": "v1.31.2+k0s", "conf": "/etc/cni/net.d", "bin": "/opt/cni/bin"},
    "microk8s": {
        "kubelet": "v1.31.2",
        "labels": {"microk8s.io/cluster": "true"},
        "conf": "/var/snap/microk8s/current/args/cni-network",
        "bin": "/var/snap/microk8s/current/opt/cni/bin",
    },
}


def node(name: str, distro: str) -> dict[str, Any]:
    d = DISTROS[distro]
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **d.get("labels", {})}
    spec = {"providerID": d["provider"] + name} if "provider" in d else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "nodeInfo": {
                "kubeletVersion": d["kubelet"],
                "containerRuntimeVersion": d.get("runtime", "containerd://1.7.22"),
            },
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def node_files(files: Mapping[str, str | None], dirs: Iterable[str] = ()) -> NodeFiles:
    """Host path -> content (None: a file whose content does not matter); plus empty dirs."""
    entries: dict[str, Entry] = {}
    for path, content in files.items():
        parts = path.rstrip("/").split("/")
        for i in range(2, len(parts)):
            entries.setdefault("/".join(parts[:i]), Entry("dir"))
        entries[path.rstrip("/")] = Entry("file", content)
    for d in dirs:
        parts = d.rstrip("/").split("/")
        for i in range(2, len(parts) + 1):
            entries.setdefault("/".join(parts[:i]), Entry("dir"))
    return NodeFiles(entries)


def distro_files(distro: str) -> dict[str, str | None]:
    """A node of that distribution with its primary CNI (flannel) ready, before Multus."""
    d = DISTROS[distro]
    files: dict[str, str | None] = {f"{d['conf']}/10-flannel.conflist": json.dumps(FLANNEL, indent=2)}
    files.update({f"{d['bin']}/{p}": None for p in PLUGINS})
    return files


def pod(
    ds: Mapping[str, Any], node_name: str, *, running: bool = True, exit_code: int = 0, restarts: int = 5
) -> dict[str, Any]:
    meta = ds["metadata"]
    spec = ds["spec"]["template"]["spec"]
    main = spec["containers"][0]["name"]
    if running:
        state: dict[str, Any] = {"running": {"startedAt": "2026-12-03T10:00:00Z"}}
        status = {"name": main, "ready": True, "restartCount": 0, "state": state}
        phase = "Running"
    else:
        reason = "Completed" if exit_code == 0 else "Error"
        status = {
            "name": main,
            "ready": False,
            "restartCount": restarts,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": exit_code, "reason": reason}},
        }
        phase = "Running"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{node_name}",
            "namespace": meta.get("namespace", "default"),
            "labels": dict(ds["spec"]["selector"]["matchLabels"]),
            "ownerReferences": [{"kind": "DaemonSet", "name": meta["name"], "apiVersion": "apps/v1"}],
        },
        "spec": {**spec, "nodeName": node_name},
        "status": {"phase": phase, "containerStatuses": [status]},
    }


def load_yaml_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def observed(name: str, *, with_logs: bool = True, with_pods: bool = True, with_files: bool = True) -> Snapshot:
    """An observed scenario as diagnose would see it live, after the real Multus ran."""
    data = yaml.safe_load((SHARED / "observed" / f"{name}.yaml").read_text())
    objs = data["manifest"]
    ds = next(o for o in objs if o["kind"] == "DaemonSet")
    distro = data["node_distribution"]
    files: dict[str, str | None] = {}
    dirs: list[str] = []
    for path in data["host_files_after"]:
        if path.endswith("/"):
            dirs.append(path)
        else:
            files[path] = None
    before = data.get("host_files_before") or {}
    files.update(before)
    files[f"{data['node_cni_conf_dir']}/10-flannel.conflist"] = json.dumps(FLANNEL)
    # The fixtures list what Multus touched; a node whose primary is flannel also has flannel's binaries.
    files.update({f"{DISTROS[distro]['bin']}/{p}": None for p in PRIMARY_PLUGINS})
    for path, content in (data.get("multus_written") or {}).items():
        files[path] = json.dumps(content)
    pods, logs = [], {}
    if with_pods:
        running = data["exit_code"] == 124
        p = pod(ds, "node-1", running=running, exit_code=data["exit_code"])
        pods.append(p)
        if with_logs:
            init: list[str] = []
            main: list[str] = []
            for line in data["last_lines"]:
                if line.startswith("[init "):
                    init.append(line.split("] ", 1)[1])
                else:
                    main.append(line)
            ns, pname = p["metadata"]["namespace"], p["metadata"]["name"]
            init_name = ds["spec"]["template"]["spec"]["initContainers"][0]["name"]
            logs[(ns, pname, init_name, False)] = "\n".join(init)
            logs[(ns, pname, ds["spec"]["template"]["spec"]["containers"][0]["name"], not running)] = "\n".join(main)
    return Snapshot(
        source=f"observed/{name}",
        nodes=(node("node-1", distro),),
        daemonsets=(ds,),
        configmaps=tuple(o for o in objs if o["kind"] == "ConfigMap"),
        pods=tuple(pods),
        logs=logs,
        node_files={"node-1": node_files(files, dirs)} if with_files else {},
    )


def observed_names() -> list[str]:
    return sorted(p.stem for p in (SHARED / "observed").glob("*.yaml"))


def observed_verdict(name: str) -> str:
    return str(yaml.safe_load((SHARED / "observed" / f"{name}.yaml").read_text())["verdict"])


def manifest_snapshot(objs: list[Any], distro: str, nodes: int = 1) -> Snapshot:
    """An upstream manifest on fresh nodes of one distribution (Multus not started yet)."""
    names = [f"node-{i}" for i in range(1, nodes + 1)]
    return Snapshot(
        source="manifest",
        nodes=tuple(node(n, distro) for n in names),
        daemonsets=tuple(o for o in objs if o.get("kind") == "DaemonSet"),
        configmaps=tuple(o for o in objs if o.get("kind") == "ConfigMap"),
        node_files={n: node_files(distro_files(distro)) for n in names},
    )


def installed_executable() -> str:
    """The `kubectl-multus` console script of the running environment (skips when not installed)."""
    import shutil
    import sys
    from pathlib import Path

    import pytest

    found = shutil.which("kubectl-multus", path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip("kubectl-multus is not installed in this environment (pip install -e .)")
    return found
