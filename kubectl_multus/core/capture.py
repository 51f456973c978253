"""What to read on a node, and how a container reaches it: pure planning for the live source.

A node's files are read through a pod: the Multus pod itself when it runs (through its own
mounts, so only what those mounts reach), else a short-lived helper pod that mounts the host
read-only. Either way the paths travel as argv items, never inside a shell string.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubectl_multus.core.distros import K3S_DATA_DIR, KUBELET_ROOT, TABLE, detect
from kubectl_multus.core.install import Install
from kubectl_multus.core.paths import MountTable, is_under, norm
from kubectl_multus.core.snapshot import Entry, NodeFiles

# hostPaths Multus mounts that are large or not files at all: never read whole.
NEVER_READ = ("/", "/run", "/var/run", "/var/lib/kubelet", "/proc", "/sys", "/dev", "/run/netns", "/var/run/netns",
              "/var/lib/cni/multus", "/run/k8s.cni.cncf.io", "/var/lib", "/etc", "/var", "/opt", "/usr")  # fmt: skip
HELPER_ROOT = "/host"
SHIM_SOCKET_DIR = "/run/multus"  # the shim's default daemonSocketDir (upstream and rke2 charts)


@dataclass(frozen=True)
class CapturePlan:
    """Host paths to read on one node: `trees` whole (small config dirs and files), `listings`
    by name only (bin dirs hold large binaries; their names are what matters)."""

    trees: tuple[str, ...]
    listings: tuple[str, ...]
    known: tuple[str, ...] = ()  # host dirs known to exist (the distribution's own, e.g. a k3s --data-dir)

    @property
    def roots(self) -> tuple[str, ...]:
        return self.trees + self.listings


def outermost(paths: Iterable[str]) -> tuple[str, ...]:
    """Drop paths that lie under another one in the set, keep order."""
    unique = list(dict.fromkeys(norm(p) for p in paths if p))
    return tuple(p for p in unique if not any(q != p and is_under(p, q) for q in unique))


def plan(inst: Install, node: Mapping[str, Any]) -> CapturePlan:
    """Everything diagnose may look at on this node, for this install."""
    distro, _, _ = detect(node)
    data_dir = distro.data_dir or K3S_DATA_DIR
    trees: list[str] = [d.conf_dir for d in TABLE.values()] + [distro.conf_dir, "/etc/cni/multus/net.d"]
    trees += [c for d in (*TABLE.values(), distro) for c in d.runtime_configs]
    bins: list[str] = [b for d in (*TABLE.values(), distro) for b in (d.bin_dir, *d.more_bin_dirs)]
    bins += [f"{data_dir}/data/cni", f"{data_dir}/data/current/bin"]
    if distro.kubelet_root != KUBELET_ROOT:
        # Only the pod-resources socket, in the distribution's root and the usual one: roots are large.
        bins += [f"{distro.kubelet_root}/pod-resources", f"{KUBELET_ROOT}/pod-resources"]
    for m in inst.mounts.mounts + tuple(m for _, t in inst.init_mounts for m in t.mounts):
        host = m.volume.host_path
        if m.volume.kind != "hostPath" or host is None or norm(host) in NEVER_READ:
            continue
        source = norm(posixpath.join(host, m.sub_path)) if m.sub_path else norm(host)
        looks_bin = "bin" in m.mount_path.rsplit("/", 1)[-1] or "bin" in m.volume.name
        (bins if looks_bin else trees).append(source)
    config = inst.mounts.host_path(inst.daemon_config_path)
    if config:
        trees.append(config)
    listings = outermost(bins)
    trees = [t for t in outermost(trees) if not any(is_under(t, b) for b in listings)]
    if inst.mode == "thick" and not any(is_under(SHIM_SOCKET_DIR, t) for t in trees):
        # the shim's socket: listed by name (tar skips sockets), to tell whether the daemon serves the host
        listings = outermost((*listings, SHIM_SOCKET_DIR))
    return CapturePlan(tuple(trees), listings, distro.own_dirs)


def for_helper(plan_: CapturePlan) -> CapturePlan:
    """What a helper pod reads: not the shim's socket dir. It would have to mount the host's /run,
    where the container runtime's own sockets are (a read-only mount does not stop a connect);
    the Multus pod's mounts reach it, and a helper is only there when that pod cannot be read."""
    return replace(plan_, listings=tuple(p for p in plan_.listings if p != SHIM_SOCKET_DIR))


@dataclass(frozen=True)
class Reach:
    """How one pod reaches host paths: host path -> container path (None: out of its reach)."""

    to_container: Callable[[str], str | None]
    through: str  # for messages: "pod kube-system/kube-multus-ds-x" or "helper pod"


def through_mounts(table: MountTable, pod_ref: str) -> Reach:
    return Reach(lambda host: table.to_container(host), pod_ref)


def through_helper(pod_ref: str, tops: Iterable[str]) -> Reach:
    mounted = tuple(tops)
    return Reach(lambda host: HELPER_ROOT + norm(host) if _top(host) in mounted else None, pod_ref)


# Top-level directories every Linux node has (FHS): a helper may mount them (type Directory)
# without risk of the runtime creating anything, or of the pod failing to start.
ALWAYS_THERE = ("/etc", "/run", "/usr", "/var")


def _top(path: str) -> str:
    return "/" + norm(path).strip("/").split("/", 1)[0]


def helper_volumes(roots: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """The top-level host directories a helper pod mounts to reach `roots` (/etc, /var, /opt…):
    a few read-only mounts instead of the whole root filesystem. A top that not every node has
    (/opt, /home) is mounted only when `known` (hostPaths a Multus pod already mounts on the
    node, which the runtime has created) shows it exists; its roots stay unread otherwise."""
    exists = set(ALWAYS_THERE) | {_top(k) for k in known if norm(k) != "/"}
    return sorted({_top(r) for r in roots if norm(r) != "/"} & exists)


def host_paths(inst: Install) -> list[str]:
    """The hostPaths an install's pods mount: they exist on every node that ran one."""
    return [m.volume.host_path for m in inst.mounts.mounts if m.volume.kind == "hostPath" and m.volume.host_path]


def helper_pod(
    node: str,
    namespace: str,
    image: str,
    roots: Iterable[str],
    *,
    deadline: int,
    known: Iterable[str] = (),
    name_prefix: str = "kubectl-multus-",
) -> dict[str, Any]:
    """A pod that can read `roots` on `node`: pinned there, tolerating every taint, read-only
    hostPath mounts under /host, no service-account token, and its own deadline so it goes away
    even if we never get to delete it."""
    tops = helper_volumes(roots, known)
    volumes = [{"name": f"host{i}", "hostPath": {"path": top, "type": "Directory"}} for i, top in enumerate(tops)]
    mounts = [{"name": f"host{i}", "mountPath": HELPER_ROOT + top, "readOnly": True} for i, top in enumerate(tops)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{name_prefix}{node[:40]}-",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "kubectl-multus", "app.kubernetes.io/component": "node-reader"},
            "annotations": {"kubectl-multus/node": node},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "reader",
                    "image": image,
                    # Ends by itself even if nobody deletes it; root only to read 0600 files.
                    "command": ["sleep", str(deadline)],
                    "securityContext": {
                        "runAsUser": 0,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                    },
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "100m", "memory": "64Mi"},
                    },
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        },
    }


# --- turning what the pod printed into NodeFiles ---------------------------------------------
@dataclass(frozen=True)
class Member:
    """One archive member or listed name, by container path."""

    path: str
    kind: str  # dir | file | link
    content: bytes | None = None
    target: str | None = None


def node_files(
    plan_: CapturePlan, reach: Reach, members: Iterable[Member], missing: Iterable[str], max_text: int
) -> NodeFiles:
    """NodeFiles from what a pod read. `members` are container paths, `missing` container paths
    the pod said do not exist. A root counts as captured when it was read or known absent."""
    pairs = [(host, reach.to_container(host)) for host in plan_.roots]
    reachable = [(h, c) for h, c in pairs if c is not None]
    entries: dict[str, Entry] = {}
    seen: set[str] = set()
    for m in members:
        for host, cont in reachable:
            if is_under(m.path, cont):
                rel = norm(m.path)[len(norm(cont)) :] if norm(cont) != "/" else norm(m.path)
                path = norm(host + rel) if rel else host
                text = None
                if m.content is not None and len(m.content) <= max_text:
                    try:
                        text = m.content.decode("utf-8")
                    except UnicodeDecodeError:
                        text = None
                entries[path] = Entry(m.kind, text if m.kind == "file" else None, m.target)
                seen.add(host)
                break
    absent = {norm(p) for p in missing}
    roots = tuple(h for h, c in reachable if h in seen or norm(c) in absent)
    return NodeFiles(entries, roots)


def writer_pod(node: str, namespace: str, image: str, directory: str, *, deadline: int) -> dict[str, Any]:
    """A pod that can change files in one host directory on `node`: that directory alone,
    read-write (type Directory: never created), privileged so SELinux hosts let it write."""
    pod = helper_pod(node, namespace, image, [], deadline=deadline, name_prefix="kubectl-multus-fix-")
    pod["metadata"]["labels"]["app.kubernetes.io/component"] = "node-writer"
    pod["spec"]["volumes"] = [{"name": "target", "hostPath": {"path": norm(directory), "type": "Directory"}}]
    container = pod["spec"]["containers"][0]
    container["name"] = "writer"
    container["securityContext"] = {"privileged": True, "runAsUser": 0, "readOnlyRootFilesystem": True}
    container["volumeMounts"] = [{"name": "target", "mountPath": HELPER_ROOT + norm(directory)}]
    return pod
