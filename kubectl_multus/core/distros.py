"""Which Kubernetes distribution a node runs, and where its container runtime keeps CNI files.

The API tells the distribution (kubelet version suffix, labels, providerID, k3s node-args);
the runtime's own config on the node, when it was read, is the ground truth.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.paths import norm
from kubectl_multus.core.snapshot import NodeFiles

K3S_DATA_DIR = "/var/lib/rancher/k3s"
MICROK8S = "/var/snap/microk8s/current"
KUBELET_ROOT = "/var/lib/kubelet"


@dataclass(frozen=True)
class Distro:
    name: str
    conf_dir: str
    bin_dir: str
    runtime_configs: tuple[str, ...] = ()  # where the runtime config lives on the node (a dir: drop-ins)
    data_dir: str | None = None  # k3s/rke2 --data-dir
    more_bin_dirs: tuple[str, ...] = ()  # searched too, after bin_dir
    own_dirs: tuple[str, ...] = ()  # created by the distribution on every node (a helper pod may mount them)
    kubelet_root: str = KUBELET_ROOT  # the kubelet's --root-dir


# The first k3s release of each minor with the stable data/cni bin dir (k3s-io/k3s#10869, Oct 2024).
K3S_STABLE_BIN_FROM = {(1, 28): 15, (1, 29): 10, (1, 30): 6, (1, 31): 2}


def k3s_has_stable_bin(kubelet: str) -> bool | None:
    """True/False from a `v1.30.6+k3s1` kubelet version; None when it cannot tell."""
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", kubelet)
    if not m:
        return None
    major, minor, patch = (int(g) for g in m.groups())
    if (major, minor) in K3S_STABLE_BIN_FROM:
        return patch >= K3S_STABLE_BIN_FROM[(major, minor)]
    return (major, minor) > max(K3S_STABLE_BIN_FROM)


def k3s(data_dir: str = K3S_DATA_DIR, flannel: bool = True, stable_bin: bool = True) -> Distro:
    if not flannel:  # k3s renders no cni section without flannel: containerd defaults apply
        return Distro(
            "k3s",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            (f"{data_dir}/agent/etc/containerd/config.toml",),
            data_dir,
            own_dirs=(data_dir,),
        )
    return Distro(
        "k3s",
        f"{data_dir}/agent/etc/cni/net.d",
        f"{data_dir}/data/cni" if stable_bin else f"{data_dir}/data/current/bin",
        (f"{data_dir}/agent/etc/containerd/config.toml",),
        data_dir,
        own_dirs=(data_dir,),
    )


TABLE: dict[str, Distro] = {
    "k3s": k3s(),
    "rke2": Distro(
        "rke2",
        "/etc/cni/net.d",
        "/opt/cni/bin",
        ("/var/lib/rancher/rke2/agent/etc/containerd/config.toml",),
        "/var/lib/rancher/rke2",
        own_dirs=("/var/lib/rancher/rke2",),
    ),
    "microk8s": Distro(
        "microk8s",
        f"{MICROK8S}/args/cni-network",
        f"{MICROK8S}/opt/cni/bin",
        (f"{MICROK8S}/args/containerd-template.toml",),
        kubelet_root="/var/snap/microk8s/common/var/lib/kubelet",  # --root-dir=${SNAP_COMMON}/var/lib/kubelet
    ),
    "openshift": Distro("openshift", "/etc/kubernetes/cni/net.d", "/var/lib/cni/bin", ("/etc/crio/crio.conf",)),
    # GKE keeps its kubelet and CNI plugins in /home/kubernetes/bin: /opt is read-only on COS (multus-cni#620).
    "gke": Distro(
        "gke",
        "/etc/cni/net.d",
        "/home/kubernetes/bin",
        ("/etc/containerd/config.toml",),
        own_dirs=("/home/kubernetes",),
    ),
    # CRI-O searches every plugin_dirs entry; packaged plugins live in /usr/libexec/cni, upstream's in /opt/cni/bin.
    "crio": Distro(
        "crio",
        "/etc/cni/net.d",
        "/usr/libexec/cni",
        ("/etc/crio/crio.conf", "/etc/crio/crio.conf.d"),
        None,
        ("/opt/cni/bin",),
    ),
    # k0s: kubelet root <data-dir>/kubelet (docs.k0sproject.io "k0s directories").
    "k0s": Distro(
        "k0s", "/etc/cni/net.d", "/opt/cni/bin", ("/etc/k0s/containerd.toml",), kubelet_root="/var/lib/k0s/kubelet"
    ),
    "kind": Distro("kind", "/etc/cni/net.d", "/opt/cni/bin", ("/etc/containerd/config.toml",)),
    "kubeadm": Distro("kubeadm", "/etc/cni/net.d", "/opt/cni/bin", ("/etc/containerd/config.toml",)),
}
GENERIC = TABLE["kubeadm"]

# k3s before its Oct-2024 releases: binaries in data/<hash>/bin, reached through data/current.
K3S_VERSIONED_BIN = re.compile(r"^(?P<data>.+)/data/(current|previous|[0-9a-f]{7,64})/bin(/cni)?$")


@dataclass(frozen=True)
class RuntimeDirs:
    """The conf and bin dirs the node's runtime really uses, and how we know."""

    distro: Distro
    conf_dir: str
    bin_dir: str
    source: str  # e.g. "k3s defaults (kubelet v1.30.4+k3s1)" or "node file /etc/containerd/config.toml"
    confident: bool  # False when nothing pointed at the distribution
    more_bin_dirs: tuple[str, ...] = ()  # also searched by the runtime

    @property
    def bin_dirs(self) -> tuple[str, ...]:
        return (self.bin_dir, *self.more_bin_dirs)


def _node_args(node: Mapping[str, Any], program: str) -> list[str]:
    raw = ((node.get("metadata") or {}).get("annotations") or {}).get(f"{program}.io/node-args")
    try:
        args = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(a) for a in args] if isinstance(args, list) else []


def _arg(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def detect(node: Mapping[str, Any]) -> tuple[Distro, str, bool]:
    """Distribution of a Node object: (distro, why, confident)."""
    meta = node.get("metadata") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    info = (node.get("status") or {}).get("nodeInfo") or {}
    kubelet = str(info.get("kubeletVersion", ""))
    runtime = str(info.get("containerRuntimeVersion", ""))
    provider = str((node.get("spec") or {}).get("providerID", ""))

    if "+k3s" in kubelet or provider.startswith("k3s://") or labels.get("node.kubernetes.io/instance-type") == "k3s":
        args = _node_args(node, "k3s")
        data_dir = _arg(args, "--data-dir") or K3S_DATA_DIR
        flannel = _arg(args, "--flannel-backend") != "none"
        why = f"kubelet {kubelet}" if "+k3s" in kubelet else f"providerID {provider}" if provider else "k3s label"
        if data_dir != K3S_DATA_DIR:
            why += f", --data-dir {data_dir}"
        if not flannel:
            why += ", --flannel-backend=none"
        stable = k3s_has_stable_bin(kubelet)
        if stable is False:
            why += ", before the stable data/cni bin dir"
        return k3s(norm(data_dir), flannel, stable is not False), why, True
    if "+rke2" in kubelet or provider.startswith("rke2://") or labels.get("node.kubernetes.io/instance-type") == "rke2":
        return TABLE["rke2"], f"kubelet {kubelet}", True
    if labels.get("microk8s.io/cluster") == "true" or any(k.startswith("node.kubernetes.io/microk8s") for k in labels):
        return TABLE["microk8s"], "label microk8s.io/cluster", True
    if any(k.startswith("node.openshift.io/") for k in labels) or any(
        k.startswith("machineconfiguration.openshift.io/") for k in annotations
    ):
        return TABLE["openshift"], "OpenShift node labels", True
    if "k0s" in kubelet:
        return TABLE["k0s"], f"kubelet {kubelet}", True
    if provider.startswith("gce://") and any(k.startswith("cloud.google.com/gke") for k in labels):
        return TABLE["gke"], "GKE node labels", True
    if runtime.startswith("cri-o://"):
        return TABLE["crio"], f"runtime {runtime}", True
    if provider.startswith("kind://"):
        return TABLE["kind"], f"providerID {provider}", True
    if "node-role.kubernetes.io/control-plane" in labels or "kubeadm.alpha.kubernetes.io/cri-socket" in annotations:
        return TABLE["kubeadm"], "kubeadm node labels", True
    return GENERIC, "no distribution marker; containerd defaults", False


_TOML_KEY = re.compile(r'^\s*(conf_dir|bin_dir|network_dir)\s*=\s*"([^"]+)"', re.M)
_TOML_LIST = re.compile(r"^\s*(bin_dirs|plugin_dirs)\s*=\s*\[([^\]]*)\]", re.M)


def runtime_config_dirs(text: str, distro: Distro) -> tuple[str | None, str | None]:
    """(conf_dir, bin_dir) named in a containerd or CRI-O config, templates included."""
    conf, all_bins = runtime_config_all_dirs(text, distro)
    return conf, all_bins[0] if all_bins else None


def runtime_config_all_dirs(text: str, distro: Distro) -> tuple[str | None, list[str]]:
    """(conf_dir, every bin dir) named in a containerd or CRI-O config: CRI-O searches all plugin_dirs."""
    conf = None
    bins: list[str] = []
    for key, value in _TOML_KEY.findall(text):
        if key in ("conf_dir", "network_dir"):
            conf = value
        else:
            bins = [value]
    for _key, values in _TOML_LIST.findall(text):
        listed = re.findall(r'"([^"]+)"', values)
        if listed:
            bins = listed
    subst = {"${SNAP_DATA}": MICROK8S, "$SNAP_DATA": MICROK8S}
    if distro.data_dir:
        subst["{{ .NodeConfig.AgentConfig.CNIConfDir }}"] = f"{distro.data_dir}/agent/etc/cni/net.d"

    def expand(value: str | None) -> str | None:
        if value is None or ("{{" in value and not any(k in value for k in subst)):
            return None
        for k, v in subst.items():
            value = value.replace(k, v)
        return norm(value)

    return expand(conf), [b for b in (expand(v) for v in bins) if b]


def _has_primary(files: NodeFiles, conf_dir: str) -> bool:
    return any(is_primary_config(n) for n in files.listdir(conf_dir) or [])


def is_primary_config(name: str) -> bool:
    """A file the runtime (and Multus's auto mode) may take as the primary network."""
    return name.endswith((".conf", ".conflist", ".json")) and not name.startswith("00-multus")


def runtime_dirs(node: Mapping[str, Any], files: NodeFiles | None) -> RuntimeDirs:
    """Conf and bin dir for one node: the table, unless the node's files say otherwise."""
    distro, why, confident = detect(node)
    conf, bins, source = distro.conf_dir, distro.bin_dir, f"{distro.name} defaults ({why})"
    more = distro.more_bin_dirs
    if files is None:
        return RuntimeDirs(distro, conf, bins, source, confident, more)
    found_conf: str | None = None
    found_bins: list[str] = []
    found_in: list[str] = []
    for path in _config_files(files, distro.runtime_configs):  # later drop-ins override earlier files
        text = files.read(path)
        if text:
            c, b = runtime_config_all_dirs(text, distro)
            if c or b:
                found_conf, found_bins = c or found_conf, b or found_bins
                found_in.append(path)
    if found_in:
        bins_all = found_bins or [bins, *more]
        found = RuntimeDirs(
            distro, found_conf or conf, bins_all[0], f"node file {', '.join(found_in)}", True, tuple(bins_all[1:])
        )
        return _k3s_versioned_config(found, files)
    if more and files.exists(bins) is False:
        present = [b for b in more if files.exists(b)]
        if present:  # e.g. CRI-O with plugins only in /opt/cni/bin
            bins, more, source = (
                present[0],
                tuple(b for b in (bins, *more) if b != present[0]),
                source + (f"; node has {present[0]}"),
            )
    if not _has_primary(files, conf):
        # The table's dir holds no network config: look where the others keep theirs.
        for other in [k3s(), *TABLE.values()]:
            if other.conf_dir != conf and _has_primary(files, other.conf_dir):
                if not confident:
                    distro = other
                conf, source, confident = other.conf_dir, f"node files (network config found in {other.conf_dir})", True
                bins = other.bin_dir if files.exists(other.bin_dir) else bins
                break
    if distro.name == "k3s" and distro.data_dir and bins.startswith(distro.data_dir + "/data/"):
        # The node tells which k3s bin dir it has: the stable data/cni (Oct 2024 on) or data/current/bin.
        stable, old = f"{distro.data_dir}/data/cni", f"{distro.data_dir}/data/current/bin"
        if files.exists(stable) and bins != stable:
            bins, source = stable, source + f"; node has {stable}"
        elif files.exists(stable) is False and files.exists(old) and bins != old:
            bins, source = old, source + f"; node has no {stable}, using {old}"
    return RuntimeDirs(distro, conf, bins, source, confident, more)


def _k3s_versioned_config(dirs: RuntimeDirs, files: NodeFiles) -> RuntimeDirs:
    """k3s before Oct 2024 writes its release's data/<hash>/bin into config.toml; users (and the
    k3s docs) reach that dir as data/current/bin, which k3s re-points at that same release each
    time it starts. So both name the runtime's dir until the next upgrade (M113 says the rest)."""
    data = dirs.distro.data_dir
    m = K3S_VERSIONED_BIN.match(dirs.bin_dir)
    if dirs.distro.name != "k3s" or not data or not m or m.group("data") != data:
        return dirs
    current = f"{data}/data/current/bin"
    if dirs.bin_dir == current or files.exists(f"{data}/data/cni") is not False or not files.exists(current):
        return dirs
    return RuntimeDirs(
        dirs.distro,
        dirs.conf_dir,
        current,
        f"{dirs.source}; node has no {data}/data/cni, {current} leads to {dirs.bin_dir}",
        True,
        (dirs.bin_dir, *dirs.more_bin_dirs),
    )


def _config_files(files: NodeFiles, paths: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for path in paths:
        if files.is_dir(path):
            out.extend(f"{path}/{n}" for n in sorted(files.listdir(path) or []) if n.endswith(".conf"))
        else:
            out.append(path)
    return out
