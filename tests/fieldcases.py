"""Field cases (shared/fixtures/field) as running simulated clusters.

`build(shared, case, workdir)` gives a `Cluster`, not started: one node of the case's distribution with
that distribution's files (its primary CNI config, the runtime's CNI binaries), the case's
`host_files`, and the objects of the upstream manifest the reporter used with the reported
volumes, mounts, args and daemon config applied (`null` in a case: the report did not say, so the
manifest's value stays). What a case needs beyond that is its `Setup`: the distribution's version,
a primary config other than flannel, and an `extra` hook that edits the DaemonSet or adds objects
and node files before the cluster starts (a NetworkAttachmentDefinition, another DaemonSet or
ConfigMap: append it to `Field.objects`; a node file: set it in `Field.files`). `settle(sim, case)` then lets the simulated Multus run
(it crash-loops or writes its config as the real one does) and runs the case's `after` hook (what
happened on the node later, such as a file left empty by a reboot).

Adding a case is a `Setup` in `CASES`; `test_field_cases.py` says what the diagnosis must be.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simcluster.cluster import Cluster
from simcluster.process import Clock
from tests import scenarios as sc

START = 1_796_000_000.0
NODE = "node-1"
UPSTREAM = "k8snetworkplumbingwg-multus-cni"
THIN, THICK = f"{UPSTREAM}/multus-daemonset.yml", f"{UPSTREAM}/multus-daemonset-thick.yml"
K3S_HASH = "6d1f1a8e2c1c0b5d4a8f2b3e6c7d9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"  # data/<hash>: any k3s build
Obj = dict[str, Any]


@dataclass
class Field:
    """One field case on its way into a cluster: the case's data and the objects it will hold."""

    case: Obj
    setup: Setup
    objects: list[Obj]
    files: dict[str, str | None]  # host path -> content (None: a binary); dirs end with "/"
    links: dict[str, str] = field(default_factory=dict)  # host path -> symlink target

    @property
    def ds(self) -> Obj:
        return next(o for o in self.objects if o["kind"] == "DaemonSet")

    @property
    def pod_spec(self) -> Obj:
        spec: Obj = self.ds["spec"]["template"]["spec"]
        return spec


Hook = Callable[[Field], None]
After = Callable[[Cluster, Field], None]


@dataclass(frozen=True)
class Setup:
    """What a case needs besides its YAML: the manifest, the node, and hooks."""

    manifest: str  # under shared/fixtures/upstream
    distro: str  # a key of tests.scenarios.DISTROS
    kubelet: str | None = None  # the distribution's release, when the case names one
    primary: tuple[str, Obj] | None = None  # (file name, content) instead of flannel
    k3s_old_bin: bool = False  # k3s before Oct 2024: binaries in data/<hash>/bin, reached by data/current
    extra: Hook | None = None  # edits before the cluster starts (objects, node files)
    faults: Callable[[Cluster], None] | None = None  # what the simulated cluster does that a case needs
    after: After | None = None  # what happened on the node once Multus had run
    settle: float = 180.0  # virtual seconds Multus runs before the diagnosis
    daemon_config_quoted: bool = False  # the case's daemon_config quotes some keys of the manifest's, not all
    # (prefix in the case's host_files, prefix on the node) where a report shortened its paths
    alias: tuple[str, str] | None = None

    def on_node(self, path: str) -> str:
        """A host path of the case, where it is on the simulated node."""
        if self.alias is not None and path.startswith(self.alias[0]):
            return self.alias[1] + path.removeprefix(self.alias[0])
        return path


def _case(shared: Path, case: str) -> Obj:
    data: Obj = yaml.safe_load((shared / "field" / f"{case}.yaml").read_text())
    return data


def prepare(shared: Path, case: str) -> Field:
    """The case's objects and node files, before anything runs."""
    setup = CASES[case]
    data = _case(shared, case)
    objects = [copy.deepcopy(d) for d in yaml.safe_load_all((shared / "upstream" / setup.manifest).read_text()) if d]
    f = Field(data, setup, objects, {})
    _apply_daemonset(f)
    _node_files(f)
    if setup.extra is not None:
        setup.extra(f)
    _host_files(f)
    return f


def _apply_daemonset(f: Field) -> None:
    """The reported volumes, mounts, args and daemon config over the manifest's."""
    reported = f.case["daemonset"]
    spec, main = f.pod_spec, f.pod_spec["containers"][0]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for v in reported["volumes"] or []:
        if v["hostPath"]:  # null: the report did not say
            volumes[v["name"]] = {"name": v["name"], "hostPath": {"path": v["hostPath"]}}
    spec["volumes"] = list(volumes.values())
    for m in reported["mounts"] or []:
        # a report quotes the main container's mounts; where that does not mount the volume, the
        # containers that do (field-16's cnibin: only its init container), else main
        users = (
            [main]
            if _mounts(main, m["name"])
            else [c for c in spec["containers"] + spec.get("initContainers", []) if _mounts(c, m["name"])] or [main]
        )
        for c in users:
            mounts = {x["name"]: x for x in c.get("volumeMounts") or []}
            mounts[m["name"]] = {**mounts.get(m["name"], {}), "name": m["name"], "mountPath": m["mountPath"]}
            c["volumeMounts"] = list(mounts.values())
    if reported["args"] is not None:
        main["args"] = list(reported["args"])
    if f.case["daemon_config"] is not None:
        cm = next(o for o in f.objects if o["kind"] == "ConfigMap" and "daemon-config.json" in o.get("data", {}))
        reported = f.case["daemon_config"]
        if f.setup.daemon_config_quoted:
            reported = {**json.loads(cm["data"]["daemon-config.json"]), **reported}
        cm["data"]["daemon-config.json"] = json.dumps(reported, indent=4)


def _mounts(container: Obj, volume: str) -> bool:
    return any(m["name"] == volume for m in container.get("volumeMounts") or [])


def _cri_cni(bin_dir: str, conf_dir: str) -> str:
    return f'[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "{bin_dir}"\n  conf_dir = "{conf_dir}"\n'


# The runtime's own config, as each distribution writes it. Not for k3s before its stable bin dir:
# there k3s renders the versioned data/<hash>/bin, which the case files name through data/current.
RUNTIME_CONFIG = {
    "k3s": (
        "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
        _cri_cni("/var/lib/rancher/k3s/data/cni", "/var/lib/rancher/k3s/agent/etc/cni/net.d"),
    ),
    "gke": ("/etc/containerd/config.toml", _cri_cni("/home/kubernetes/bin", "/etc/cni/net.d")),
    "kubeadm": ("/etc/containerd/config.toml", _cri_cni("/opt/cni/bin", "/etc/cni/net.d")),
}


def _node_files(f: Field) -> None:
    """The distribution's files: its primary CNI config, the runtime's CNI binaries and config."""
    setup, d = f.setup, sc.DISTROS[f.setup.distro]
    # Multus installs its own binary: the node starts without it
    files = {p: c for p, c in sc.distro_files(setup.distro).items() if not p.endswith(("/multus", "/multus-shim"))}
    if setup.distro in RUNTIME_CONFIG and not setup.k3s_old_bin:
        path, text = RUNTIME_CONFIG[setup.distro]
        files[path] = text
    if setup.primary is not None:
        files.pop(f"{d['conf']}/10-flannel.conflist")
        name, content = setup.primary
        files[f"{d['conf']}/{name}"] = json.dumps(content, indent=2)
    if setup.k3s_old_bin:
        data_dir = d["bin"].removesuffix("/data/cni")
        files = {
            (f"{data_dir}/data/{K3S_HASH}/bin" + p.removeprefix(d["bin"]) if p.startswith(d["bin"]) else p): c
            for p, c in files.items()
        }
        f.links[f"{data_dir}/data/current"] = K3S_HASH
    f.files.update(files)


def _host_files(f: Field) -> None:
    """Every path the case says the node has: made where nothing above made it."""
    for path in map(f.setup.on_node, f.case["host_files"] or []):
        if path in f.links:
            continue
        for link, target in f.links.items():  # data/current/bin is data/<hash>/bin
            if path.startswith(link + "/"):
                path = f"{os.path.dirname(link)}/{target}{path.removeprefix(link)}"
        known = path in f.files or any(p.startswith(path.rstrip("/") + "/") for p in f.files)
        if not known and not _written_later(path):
            f.files[path if "." in os.path.basename(path) else path.rstrip("/") + "/"] = ""


def _written_later(path: str) -> bool:
    """Files the case's node has because Multus wrote them, or Cilium renamed them (field-11)."""
    return os.path.basename(path).split(".cilium_bak")[0] in ("00-multus.conf", "00-multus.conflist")


def node_object(f: Field) -> Obj:
    node = sc.node(NODE, f.setup.distro)
    if f.setup.kubelet:
        node["status"]["nodeInfo"]["kubeletVersion"] = f.setup.kubelet
    return node


def build(shared: Path, case: str, workdir: Path) -> tuple[Cluster, Field]:
    """A cluster holding the case, not started (`with sim:` starts it)."""
    f = prepare(shared, case)
    sim = Cluster(workdir, clock=Clock(start=START))
    sim.add(node_object(f))
    root = sim.node_root(NODE)
    for path, content in f.files.items():
        real = root / path.lstrip("/")
        if path.endswith("/"):
            real.mkdir(parents=True, exist_ok=True)
            continue
        real.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            real.write_bytes(b"\x7fELF\x02\x01\x01\x00 " + os.path.basename(path).encode() + b" (simulated)\n")
            real.chmod(0o755)
        else:
            real.write_text(content)
    for path, target in f.links.items():
        (root / path.lstrip("/")).symlink_to(target)
    for obj in f.objects:
        sim.add(obj)
    if f.setup.faults is not None:
        f.setup.faults(sim)
    return sim, f


def settle(sim: Cluster, f: Field) -> None:
    """Let Multus run as long as the case says, then what happened on the node afterwards."""
    sim.advance(f.setup.settle)
    if f.setup.after is not None:
        f.setup.after(sim, f)
        sim.sync()


def write_node_file(sim: Cluster, path: str, content: str) -> None:
    real = sim.node_root(NODE) / path.lstrip("/")
    real.parent.mkdir(parents=True, exist_ok=True)
    real.write_text(content)


# --- the cases ------------------------------------------------------------------------------------
def _k3s_hostpaths(f: Field) -> None:
    """field-08: the reporter ran the chart with k3s's dirs (the kubeconfig flag names them)."""
    for v in f.pod_spec["volumes"]:
        if v["name"] == "cni":
            v["hostPath"]["path"] = sc.DISTROS["k3s"]["conf"]
        elif v["name"] == "cnibin":
            v["hostPath"]["path"] = sc.DISTROS["k3s"]["bin"]


def _conf_from_configmap(f: Field) -> None:
    """field-03: the reporter's ConfigMap volume presented cni-conf.json as 00-multus.conf, and
    --multus-conf-file names it."""
    for v in f.pod_spec["volumes"]:
        if v["name"] == "multus-cfg":
            v["configMap"]["items"][0]["path"] = "00-multus.conf"


def _empty_multus_conf(sim: Cluster, f: Field) -> None:
    """field-10: after the reboot a 0-byte 00-multus.conf is left while the daemon runs on (it
    watches only the primary config, so nothing rewrites it)."""
    write_node_file(sim, "/etc/cni/net.d/00-multus.conf", "")


def _thin_image_everywhere(f: Field) -> None:
    """field-16: the reporter changed every image to the plain (thin, distroless) v4.0.2 tag."""
    for c in f.pod_spec["containers"] + f.pod_spec["initContainers"]:
        c["image"] = "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.0.2"


CALICO = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {
            "type": "calico",
            "datastore_type": "kubernetes",
            "mtu": 0,
            "nodename_file_optional": False,
            "log_level": "Info",
            "log_file_path": "/var/log/calico/cni/cni.log",
            "ipam": {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "false"},
            "container_settings": {"allow_ip_forwarding": False},
            "policy": {"type": "k8s"},
            "kubernetes": {"k8s_api_root": "https://10.96.0.1:443", "kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
        },
        {"type": "bandwidth", "capabilities": {"bandwidth": True}},
        {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
    ],
}
CILIUM = {
    "cniVersion": "0.3.1",
    "name": "cilium",
    "plugins": [{"type": "cilium-cni", "enable-debug": False, "log-file": "/var/run/cilium/cilium-cni.log"}],
}
OVN = {
    "cniVersion": "0.4.0",
    "name": "ovn-kubernetes",
    "type": "ovn-k8s-cni-overlay",
    "ipam": {},
    "dns": {},
    "logFile": "/var/log/ovn-kubernetes/ovn-k8s-cni-overlay.log",
    "logLevel": "4",
    "logfile-maxsize": 100,
    "logfile-maxbackups": 5,
    "logfile-maxage": 5,
}
GKE_NET = {  # GKE's containerd network config (ptp); that era's cniVersion
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [
        {
            "type": "ptp",
            "mtu": 1460,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.8.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]},
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
FLANNEL_031 = {**sc.FLANNEL, "cniVersion": "0.3.1"}  # k3s's flannel config before it moved to 1.0.0


def _calico_kubeconfig(f: Field) -> None:
    f.files["/etc/cni/net.d/calico-kubeconfig"] = (
        "# Kubeconfig file for Calico CNI plugin.\napiVersion: v1\nkind: Config\n"
    )
    for name in ("calico", "calico-ipam"):
        f.files[f"/opt/cni/bin/{name}"] = None


def _cilium_on_crio(f: Field) -> None:
    """field-13: CRI-O configured with the upstream plugin dir, where Cilium installs cilium-cni."""
    f.files = {p: c for p, c in f.files.items() if not p.startswith("/usr/libexec/cni/")}
    f.files["/etc/crio/crio.conf"] = (
        '[crio.network]\nnetwork_dir = "/etc/cni/net.d/"\nplugin_dirs = ["/opt/cni/bin/"]\n'
    )
    for name in ("cilium-cni", "loopback", "host-local", "portmap"):
        f.files[f"/opt/cni/bin/{name}"] = None


def _gke_binaries(f: Field) -> None:
    for name in ("ptp", "host-local", "portmap", "loopback"):  # what GKE ships for its ptp network
        f.files[f"/home/kubernetes/bin/{name}"] = None


def _ovn_binary(f: Field) -> None:
    f.files["/opt/cni/bin/ovn-k8s-cni-overlay"] = None  # ovnkube-node installs it


def _daemon_needs_53mi(sim: Cluster) -> None:
    """field-13: the daemon alone used ~53Mi on the reporter's nodes (root_cause)."""
    sim.faults.memory_use["kube-multus"] = "53Mi"


K3S_DATA = "/var/lib/rancher/k3s/data"
K3S_OLD, K3S_NEW = "3ccf8a82", "433356f"  # field-05's release dirs
K3S_KUBECONFIG = "/var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/multus.kubeconfig"


def _set_arg(f: Field, flag: str, value: str) -> None:
    main = f.pod_spec["containers"][0]
    main["args"] = [a for a in main.get("args") or [] if not a.startswith(f"{flag}=")] + [f"{flag}={value}"]


def _k3s_release_dir(f: Field) -> None:
    """field-05 before the upgrade: the binaries in data/<hash>/bin, reached by data/current, which
    the runtime's config names (as k3s rendered it then) and the cnibin hostPath goes through. The
    report quotes neither the hostPath nor the kubeconfig flag: Multus ran until the upgrade, so
    they were k3s's."""
    d = sc.DISTROS["k3s"]
    f.files = {
        (f"{K3S_DATA}/{K3S_OLD}/bin" + p.removeprefix(d["bin"]) if p.startswith(d["bin"] + "/") else p): c
        for p, c in f.files.items()
    }
    path, _ = RUNTIME_CONFIG["k3s"]
    f.files[path] = _cri_cni(f"{K3S_DATA}/{K3S_OLD}/bin", d["conf"])
    f.links[f"{K3S_DATA}/current"] = K3S_OLD
    for v in f.pod_spec["volumes"]:
        if v["name"] == "cnibin":
            v["hostPath"]["path"] = f"{K3S_DATA}/current/bin"
    _set_arg(f, "--multus-kubeconfig-file-host", K3S_KUBECONFIG)


def _k3s_upgraded(sim: Cluster, f: Field) -> None:
    """field-05: k3s upgraded to a release with the stable data/cni: the new data/<hash>/bin,
    data/cni, `current` re-pointed and the runtime's config rewritten. The running Multus pod keeps
    the old hash dir it resolved when it started (multus stays there; data/cni has none)."""
    root = sim.node_root(NODE)
    for name in sc.PRIMARY_PLUGINS:
        for where in (f"{K3S_DATA}/{K3S_NEW}/bin/{name}", f"{K3S_DATA}/cni/{name}"):
            real = root / where.lstrip("/")
            real.parent.mkdir(parents=True, exist_ok=True)
            real.write_bytes(b"\x7fELF\x02\x01\x01\x00 " + name.encode() + b" (simulated)\n")
            real.chmod(0o755)
    current = root / f"{K3S_DATA}/current".lstrip("/")
    current.unlink()
    current.symlink_to(K3S_NEW)
    write_node_file(sim, *RUNTIME_CONFIG["k3s"])


def _k3s_paths(f: Field) -> None:
    """field-06: the test pipeline's Multus ran on k3s (its search path names k3s's bin dir), so
    its dirs and kubeconfig were k3s's; the report does not quote them."""
    _k3s_hostpaths(f)
    _set_arg(f, "--multus-kubeconfig-file-host", K3S_KUBECONFIG)


def _nad(namespace: str, name: str, config: Obj) -> Obj:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"config": json.dumps(config)},
    }


# The Longhorn storage-network test's NAD: flannel with an ipvlan delegate (flannel runs it from the
# same search path, hence Multus's "failed to delegate add").
IPVLAN_NAD = {
    "cniVersion": "0.3.1",
    "type": "flannel",
    "subnetFile": "/run/flannel/multus-subnet-192.168.0.0.env",
    "dataDir": "/var/lib/cni/multus-subnet-192.168.0.0",
    "delegate": {"type": "ipvlan", "master": "eth1", "mode": "l3", "capabilities": {"ips": True}},
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


def _ipvlan_nad(f: Field) -> None:
    _k3s_paths(f)
    f.objects.append(_nad("kube-system", "demo-192-168-0-0", IPVLAN_NAD))


def _only_calico_binaries(f: Field) -> None:
    """field-07: Calico installed only its own binaries (and the few it uses) into /opt/cni/bin."""
    f.files = {p: c for p, c in f.files.items() if not p.startswith("/opt/cni/bin/")}
    for name in ("calico", "calico-ipam", "portmap", "bandwidth", "host-local", "loopback"):
        f.files[f"/opt/cni/bin/{name}"] = None
    f.files["/etc/cni/net.d/calico-kubeconfig"] = (
        "# Kubeconfig file for Calico CNI plugin.\napiVersion: v1\nkind: Config\n"
    )
    f.objects.append(_nad("default", "macvlan-conf", MACVLAN_NAD))


def _canal_down(f: Field) -> None:
    """field-09: RKE2's canal DaemonSet, whose calico-node cannot start on RHEL 10 (missing kernel
    modules), so no 10-canal.conflist is ever written. The simulator does not model kernel modules:
    any command that exits non-zero at once crash-loops the pod the same way."""
    conf = sc.DISTROS["rke2"]["conf"]
    f.files.pop(f"{conf}/10-flannel.conflist")
    labels = {"k8s-app": "canal"}
    calico = {
        "name": "calico-node",
        "image": "rancher/hardened-calico:v3.29.2-build20250306",
        "command": ["cp", "/lib/modules/ip_set.ko", "/"],  # a stand-in that fails: no such file
    }
    flannel = {"name": "kube-flannel", "image": "rancher/hardened-flannel:v0.26.5-build20250306"}
    f.objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "rke2-canal", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [calico, flannel]}},
            },
        }
    )


def _cilium_exclusive(f: Field) -> None:
    """field-11: Cilium 1.11.6 with its chart default cni.exclusive=true (its agent installed cilium-cni)."""
    f.files["/opt/cni/bin/cilium-cni"] = None
    labels = {"k8s-app": "cilium"}
    agent = {"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.11.6"}
    f.objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "cilium", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [agent]}},
            },
        }
    )
    f.objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": {"cni-exclusive": "true"},
        }
    )


def _cilium_agent_restarted(sim: Cluster, f: Field) -> None:
    """field-11: the agent restarts and renames every other config in the conf dir to *.cilium_bak."""
    conf = sim.node_root(NODE) / "etc/cni/net.d/00-multus.conf"
    conf.rename(conf.with_name("00-multus.conf.cilium_bak"))


def _oom_killed(sim: Cluster, f: Field) -> None:
    """field-12: the kernel kills multus-daemon (SIGKILL, exit 137, OOMKilled)."""
    sim.kubelet.oom_kill(NODE, "kube-multus")


def _rke2_cni_plugins(f: Field) -> None:
    """field-17: RKE2's built-in Multus adds the unprivileged `cni-plugins` init container, which
    installs the reference plugins (macvlan, ...); the node has only RKE2's own binaries."""
    f.pod_spec["initContainers"].append(
        {
            "name": "cni-plugins",
            "image": "rancher/hardened-cni-plugins:v1.9.1-build20260819",
            "env": [{"name": "SKIP_CNI_BINARIES", "value": "flannel"}],
            "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
        }
    )
    f.files = {p: c for p, c in f.files.items() if os.path.basename(p) != "macvlan"}


def _selinux(sim: Cluster) -> None:
    sim.faults.selinux_enforcing = {NODE}


CASES: dict[str, Setup] = {
    # "1.28.x" before the stable data/cni dir: the reporter's node has data/current/bin (host_files)
    "field-01": Setup(THIN, "k3s", kubelet="v1.28.8+k3s1", k3s_old_bin=True),
    "field-02": Setup(
        THIN, "k3s", kubelet="v1.19.2+k3s1", k3s_old_bin=True, primary=("10-flannel.conflist", FLANNEL_031)
    ),
    "field-03": Setup(THIN, "k3s", extra=_conf_from_configmap),
    "field-04": Setup(THIN, "gke", primary=("10-containerd-net.conflist", GKE_NET), extra=_gke_binaries),
    # the report shortens k3s's data/<hash> to <hash>
    "field-05": Setup(
        THIN,
        "k3s",
        extra=_k3s_release_dir,
        after=_k3s_upgraded,
        alias=("/var/lib/rancher/k3s/", f"{K3S_DATA}/"),
    ),
    "field-06": Setup(THIN, "k3s", extra=_ipvlan_nad),
    "field-07": Setup(THICK, "kubeadm", primary=("10-calico.conflist", CALICO), extra=_only_calico_binaries),
    "field-08": Setup(THIN, "k3s", extra=_k3s_hostpaths),
    "field-09": Setup(THIN, "rke2", extra=_canal_down),
    "field-10": Setup(
        THICK,
        "kubeadm",
        primary=("10-calico.conflist", CALICO),
        extra=_calico_kubeconfig,
        after=_empty_multus_conf,
    ),
    "field-11": Setup(
        THIN, "kubeadm", primary=("05-cilium.conflist", CILIUM), extra=_cilium_exclusive, after=_cilium_agent_restarted
    ),
    "field-12": Setup(THICK, "kubeadm", after=_oom_killed, daemon_config_quoted=True),
    "field-13": Setup(
        THICK,
        "crio",
        kubelet="v1.30.1",
        primary=("05-cilium.conflist", CILIUM),
        extra=_cilium_on_crio,
        faults=_daemon_needs_53mi,
    ),
    "field-14": Setup(THICK, "kubeadm"),
    "field-15": Setup(THICK, "kubeadm"),
    "field-16": Setup(f"{UPSTREAM}/multus-daemonset-thick.v4.0.2.yml", "kubeadm", extra=_thin_image_everywhere),
    "field-17": Setup(THIN, "rke2", extra=_rke2_cni_plugins, faults=_selinux),
    "field-18": Setup(THIN, "kind", primary=("10-ovn-kubernetes.conf", OVN), extra=_ovn_binary),
}
