"""The distribution matrix against the simulated cluster: on each distribution, the manifest a user
would deploy there is healthy (and `show-paths` names that distribution's host dirs), and the most
common mistake there is found, with a fix plan carrying that distribution's values.

Each node is staged with its real layout: the runtime's own config (the ground truth for the CNI
dirs), the primary network's config, the plugins; the Node object carries only what the API shows.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from simcluster.cluster import Cluster
from simcluster.process import Clock
from tests.e2e.conftest import START, cli, findings, helper_pods

KC = "--kubeconfig"
MC = "k8snetworkplumbingwg-multus-cni"
K3S = "/var/lib/rancher/k3s"
MICROK8S = "/var/snap/microk8s/current"
HASH_A = "3a9b7c1e0f2d4b6a8c0e2f4a6b8d0c2e4f6a8b0d2c4e6f8a0b2d4c6e8f0a2b4c"  # a k3s release's data dir
HASH_B = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"  # the next release's
PLUGINS = ("bridge", "host-local", "loopback", "portmap", "macvlan")
Objects = list[dict[str, Any]]


def conflist(name: str, version: str, *plugins: dict[str, Any]) -> str:
    return json.dumps({"name": name, "cniVersion": version, "plugins": list(plugins)}, indent=2)


def containerd_toml(conf_dir: str | None, bin_dir: str | None) -> str:
    """A containerd config.toml; without dirs it has no cni section and containerd's defaults apply."""
    head = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n'
    if conf_dir is None or bin_dir is None:
        return head
    return head + f'[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "{bin_dir}"\n  conf_dir = "{conf_dir}"\n'


def crio_conf(network_dir: str, *plugin_dirs: str) -> str:
    dirs = ", ".join(f'"{d}/"' for d in plugin_dirs)
    return f'[crio.runtime]\ncgroup_manager = "systemd"\n\n[crio.network]\nnetwork_dir = "{network_dir}/"\nplugin_dirs = [{dirs}]\n'


FLANNEL = conflist("cbr0", "1.0.0", {"type": "flannel", "delegate": {"isDefaultGateway": True}}, {"type": "portmap"})
CALICO = conflist("k8s-pod-network", "0.3.1", {"type": "calico", "ipam": {"type": "calico-ipam"}}, {"type": "portmap"})


@dataclass(frozen=True)
class Distro:
    """A node of one distribution: what the API shows of it, and what is on its disk."""

    id: str
    conf: str  # the host dirs its runtime really uses
    bin: str
    kubelet: str
    primary: tuple[str, str]  # file name in `conf` (or `primary_dir`), content
    runtime_config: tuple[str, str]  # host path, content
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    provider: str = ""
    runtime: str = "containerd://1.7.22"
    primary_dir: str | None = None  # where the primary network writes, when not `conf` (OpenShift)
    read_only: tuple[str, ...] = ()  # host dirs on a read-only filesystem
    stage: Callable[[Path], None] | None = None  # anything else on its disk (k3s's data dirs)
    links: tuple[tuple[str, str], ...] = ()  # symlinks on its disk (relative targets)
    extra_files: tuple[str, ...] = ()  # other files on its disk (content does not matter)

    def node(self, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "labels": {"kubernetes.io/hostname": name, **self.labels}}
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": meta,
            "spec": {"providerID": f"{self.provider}{name}"} if self.provider else {},
            "status": {"nodeInfo": {"kubeletVersion": self.kubelet, "containerRuntimeVersion": self.runtime}},
        }

    def put(self, root: Path) -> None:
        def write(path: str, text: str) -> None:
            real = root / path.lstrip("/")
            real.parent.mkdir(parents=True, exist_ok=True)
            real.write_text(text)

        for path, target in self.links:
            (root / path.lstrip("/")).symlink_to(target)
        name, text = self.primary
        write(f"{self.primary_dir or self.conf}/{name}", text)
        write(*self.runtime_config)
        for path in self.extra_files:
            write(path, "")
        if self.stage is not None:
            self.stage(root)
        else:
            for plugin in PLUGINS + primary_plugins(text):
                write(f"{self.bin}/{plugin}", f"{plugin} plugin\n")


def primary_plugins(text: str) -> tuple[str, ...]:
    """The binaries the primary CNI installs with its config: every type and IPAM type in it."""
    conf = json.loads(text)
    plugins = conf.get("plugins") or [conf]
    return tuple(
        t for p in plugins for t in (p.get("type"), (p.get("ipam") or {}).get("type")) if t and t not in PLUGINS
    )


def k3s_release(root: Path, data_dir: str, hash_: str, *, stable: bool) -> None:
    """What a k3s release extracts: its binaries in data/<hash>/bin (CNI plugins as symlinks to
    the multi-call `cni`), `current` pointing there, and from Oct 2024 the stable data/cni."""
    data = root / data_dir.lstrip("/") / "data"
    bin_dir = data / hash_ / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "cni").write_text(f"k3s cni {hash_[:7]}\n")
    for plugin in ("bridge", "host-local", "loopback", "portmap", "flannel"):
        if not (bin_dir / plugin).is_symlink():
            (bin_dir / plugin).symlink_to("cni")
    if (data / "current").is_symlink():
        (data / "current").unlink()
    (data / "current").symlink_to(hash_)
    if stable:
        (data / "cni").mkdir(exist_ok=True)
        for plugin in ("bridge", "host-local", "loopback", "portmap", "flannel"):
            link = data / "cni" / plugin
            if link.is_symlink():
                link.unlink()
            link.symlink_to(f"../{hash_}/bin/cni")


def k3s(data_dir: str = K3S, *, kubelet: str = "v1.31.4+k3s1", stable: bool = True, id_: str = "k3s") -> Distro:
    bin_dir = f"{data_dir}/data/cni" if stable else f"{data_dir}/data/{HASH_A}/bin"  # what k3s writes in config.toml
    args = ["server"] + (["--data-dir", data_dir] if data_dir != K3S else [])
    return Distro(
        id_,
        f"{data_dir}/agent/etc/cni/net.d",
        f"{data_dir}/data/cni" if stable else f"{data_dir}/data/current/bin",
        kubelet,
        ("10-flannel.conflist", FLANNEL),
        (
            f"{data_dir}/agent/etc/containerd/config.toml",
            containerd_toml(f"{data_dir}/agent/etc/cni/net.d", bin_dir),
        ),
        labels={"node.kubernetes.io/instance-type": "k3s"},
        annotations={"k3s.io/node-args": json.dumps(args)},
        provider="k3s://",
        runtime="containerd://1.7.23-k3s2",
        stage=lambda root: k3s_release(root, data_dir, HASH_A, stable=stable),
    )


DISTROS = {
    d.id: d
    for d in [
        k3s(),
        k3s("/srv/k3s", id_="k3s-data-dir"),
        k3s(kubelet="v1.30.4+k3s1", stable=False, id_="k3s-before-stable-bin"),
        Distro(
            "rke2",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "v1.33.5+rke2r1",
            ("10-canal.conflist", CALICO),
            # RKE2 sets no Linux CNI dirs: its containerd config has no cni section.
            ("/var/lib/rancher/rke2/agent/etc/containerd/config.toml", containerd_toml(None, None)),
            labels={"node.kubernetes.io/instance-type": "rke2"},
            provider="rke2://",
            runtime="containerd://1.7.27-k3s1",
        ),
        Distro(
            "microk8s",
            f"{MICROK8S}/args/cni-network",
            f"{MICROK8S}/opt/cni/bin",
            "v1.31.2",
            ("10-calico.conflist", CALICO),
            (
                f"{MICROK8S}/args/containerd-template.toml",
                containerd_toml("${SNAP_DATA}/args/cni-network", "${SNAP_DATA}/opt/cni/bin"),
            ),
            labels={"microk8s.io/cluster": "true", "node.kubernetes.io/microk8s-controlplane": "microk8s-controlplane"},
        ),
        Distro(
            "openshift",
            "/etc/kubernetes/cni/net.d",
            "/var/lib/cni/bin",
            "v1.29.5+87992f4",
            (
                "10-ovn-kubernetes.conf",
                json.dumps({"cniVersion": "0.4.0", "name": "ovn-kubernetes", "type": "ovn-k8s-cni-overlay"}),
            ),
            ("/etc/crio/crio.conf", crio_conf("/etc/kubernetes/cni/net.d", "/var/lib/cni/bin", "/usr/libexec/cni")),
            labels={"node.openshift.io/os_id": "rhcos", "node-role.kubernetes.io/worker": ""},
            runtime="cri-o://1.29.5-5.rhaos4.16.git7032128.el9",
            primary_dir="/var/run/multus/cni/net.d",  # OVN-Kubernetes writes for Multus, which writes the system dir
            links=(("/var/run", "../run"),),
        ),
        Distro(
            "kubeadm",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "v1.31.2",
            ("10-flannel.conflist", FLANNEL),
            ("/etc/containerd/config.toml", containerd_toml("/etc/cni/net.d", "/opt/cni/bin")),
            labels={"node-role.kubernetes.io/control-plane": ""},
        ),
        Distro(
            "kind",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "v1.31.2",
            (
                "10-kindnet.conflist",
                conflist("kindnet", "0.3.1", {"type": "ptp", "ipam": {"type": "host-local"}}, {"type": "portmap"}),
            ),
            ("/etc/containerd/config.toml", containerd_toml(None, None)),
            provider="kind://docker/kind/",
        ),
        Distro(
            "k0s",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "v1.31.2+k0s",
            (
                "10-kuberouter.conflist",
                conflist("mynet", "0.3.0", {"type": "bridge", "bridge": "kube-bridge"}, {"type": "portmap"}),
            ),
            (
                "/etc/k0s/containerd.toml",
                '# k0s_managed=true\nversion = 2\nimports = ["/run/k0s/containerd-cri.toml"]\n',
            ),
            extra_files=("/var/lib/k0s/kubelet/pod-resources/kubelet.sock",),  # kubelet root <data-dir>/kubelet
        ),
        Distro(
            "gke",
            "/etc/cni/net.d",
            "/home/kubernetes/bin",
            "v1.30.5-gke.1014001",
            (
                "10-containerd-net.conflist",
                conflist(
                    "k8s-pod-network", "0.3.1", {"type": "ptp", "ipam": {"type": "host-local"}}, {"type": "portmap"}
                ),
            ),
            ("/etc/containerd/config.toml", containerd_toml("/etc/cni/net.d", "/home/kubernetes/bin")),
            labels={"cloud.google.com/gke-nodepool": "default-pool", "cloud.google.com/gke-os-distribution": "cos"},
            provider="gce://project/us-central1-a/",
            read_only=("/opt",),  # Container-Optimized OS: /opt is on the read-only root
        ),
        Distro(
            "crio",
            "/etc/cni/net.d",
            "/usr/libexec/cni",
            "v1.31.2",
            ("10-flannel.conflist", FLANNEL.replace('"1.0.0"', '"0.3.1"')),
            ("/etc/crio/crio.conf", crio_conf("/etc/cni/net.d", "/usr/libexec/cni")),
            runtime="cri-o://1.31.1",
        ),
    ]
}


# --- manifests, as a user deploys them on each distribution ------------------------------------
def upstream(shared: Path, name: str) -> Objects:
    text = (shared / "upstream" / name).read_text()
    if "microk8s" in name:
        # what the addon's enable script substitutes
        text = text.replace("$SNAP_DATA", MICROK8S).replace("$DS_NAME", "kube-multus-ds")
    return [d for d in yaml.safe_load_all(text) if d]


def daemonset(objs: Objects) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == "DaemonSet")


def host_dirs(objs: Objects, conf: str, bin_dir: str) -> Objects:
    """The upstream thin manifest with a distribution's host dirs (what the k3s docs' chart values
    amount to): the volumes, and the kubeconfig path that lands in the host's 00-multus.conf."""
    objs = copy.deepcopy(objs)
    spec = daemonset(objs)["spec"]["template"]["spec"]
    for vol in spec["volumes"]:
        if vol["name"] in ("cni", "cnibin"):
            vol["hostPath"]["path"] = conf if vol["name"] == "cni" else bin_dir
    if conf != "/etc/cni/net.d":
        spec["containers"][0]["args"].append(f"--multus-kubeconfig-file-host={conf}/multus.d/multus.kubeconfig")
    return objs


def kubelet_dir(objs: Objects, root: str) -> Objects:
    """The upstream thick manifest with the kubelet's root dir of the distribution (still mounted
    at /var/lib/kubelet, where multus-daemon looks for the pod-resources socket)."""
    objs = copy.deepcopy(objs)
    for vol in daemonset(objs)["spec"]["template"]["spec"]["volumes"]:
        if vol["name"] == "host-var-lib-kubelet":
            vol["hostPath"]["path"] = root
    return objs


def thin_arg(objs: Objects, arg: str) -> Objects:
    objs = copy.deepcopy(objs)
    daemonset(objs)["spec"]["template"]["spec"]["containers"][0]["args"].append(arg)
    return objs


def daemon_config(objs: Objects, **keys: str) -> Objects:
    objs = copy.deepcopy(objs)
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and "daemon-config.json" in o.get("data", {}))
    cm["data"]["daemon-config.json"] = json.dumps({**json.loads(cm["data"]["daemon-config.json"]), **keys}, indent=4)
    return objs


def rke2_multus(conf: str = "/etc/cni/net.d", bin_dir: str = "/opt/cni/bin", autoconfig: str | None = None) -> Objects:
    """RKE2's built-in rke2-multus chart (thin), rendered with the given `config.cni_conf` values: the
    chart mounts each host dir at "/host" + dir and passes that to the entrypoint."""
    autoconfig = autoconfig or conf
    labels = {"app": "rke2-multus", "release": "rke2-multus", "heritage": "Helm", "tier": "node"}
    annotations = {"meta.helm.sh/release-name": "rke2-multus", "meta.helm.sh/release-namespace": "kube-system"}
    container = {
        "name": "kube-rke2-multus",
        "image": "rancher/hardened-multus-cni:v4.3.0-build20260819",
        "command": ["/thin_entrypoint"],
        "args": [
            "--multus-conf-file=auto",
            f"--cni-conf-dir=/host{conf}",
            f"--multus-autoconfig-dir=/host{autoconfig}",
            f"--cni-bin-dir=/host{bin_dir}",
            f"--multus-kubeconfig-file-host={conf}/multus.d/multus.kubeconfig",
            "--cleanup-config-on-exit=true",
        ],
        "env": [{"name": "KUBERNETES_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"name": "cni", "mountPath": f"/host{conf}"},
            {"name": "cnibin", "mountPath": f"/host{bin_dir}"},
        ],
    }
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "rke2-multus", "namespace": "kube-system", "labels": labels, "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {"app": "rke2-multus"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "multus",
                    "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [container],
                    "volumes": [
                        {"name": "cni", "hostPath": {"path": conf}},
                        {"name": "cnibin", "hostPath": {"path": bin_dir}},
                    ],
                },
            },
        },
    }
    chart = {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "rke2-multus", "namespace": "kube-system"},
        "spec": {"chart": "rke2-multus", "version": "v4.3.017", "targetNamespace": "kube-system"},
    }
    return [chart, ds]


def openshift_multus() -> Objects:
    """Multus as OpenShift's cluster network operator renders it (thick, in openshift-multus, owned by
    the Network operator config), with OVN-Kubernetes as the default network."""
    host = {
        "system-cni-dir": ("/etc/kubernetes/cni/net.d", "/host/etc/cni/net.d"),
        "multus-cni-dir": ("/var/run/multus/cni/net.d", "/host/run/multus/cni/net.d"),
        "cnibin": ("/var/lib/cni/bin", "/host/opt/cni/bin"),
        "host-var-lib-cni-bin": ("/var/lib/cni/bin", "/var/lib/cni/bin"),
        "multus-socket-dir-parent": ("/run/multus", "/host/run/multus"),
        "host-run-k8s-cni-cncf-io": ("/run/k8s.cni.cncf.io", "/run/k8s.cni.cncf.io"),
        "host-run-netns": ("/run/netns", "/run/netns"),
        "host-var-lib-cni-multus": ("/var/lib/cni/multus", "/var/lib/cni/multus"),
        "hostroot": ("/", "/hostroot"),
    }
    config = {
        "cniVersion": "0.3.1",
        "chrootDir": "/hostroot",
        "logToStderr": True,
        "logLevel": "verbose",
        "binDir": "/var/lib/cni/bin",
        "cniConfigDir": "/host/etc/cni/net.d",
        "multusConfigFile": "auto",
        "multusAutoconfigDir": "/host/run/multus/cni/net.d",
        "namespaceIsolation": True,
        "globalNamespaces": "default,openshift-multus,openshift-sriov-network-operator",
        "readinessindicatorfile": "/host/run/multus/cni/net.d/10-ovn-kubernetes.conf",
        "daemonSocketDir": "/run/multus/socket",
        "socketDir": "/host/run/multus/socket",
    }
    image = "quay.io/openshift/origin-multus-cni:4.16"
    owner = {
        "apiVersion": "operator.openshift.io/v1",
        "kind": "Network",
        "name": "cluster",
        "uid": "3e1b",
        "controller": True,
    }
    labels = {"app": "multus", "component": "network", "type": "infra", "openshift.io/component": "network"}
    mounts = [{"name": n, "mountPath": m} for n, (_, m) in host.items()]
    return [
        {"apiVersion": "operator.openshift.io/v1", "kind": "Network", "metadata": {"name": "cluster"}, "spec": {}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "multus-daemon-config", "namespace": "openshift-multus", "ownerReferences": [owner]},
            "data": {"daemon-config.json": json.dumps(config, indent=2)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "multus", "namespace": "openshift-multus", "ownerReferences": [owner]},
            "spec": {
                "selector": {"matchLabels": {"app": "multus"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "hostNetwork": True,
                        "hostPID": True,
                        "serviceAccountName": "multus",
                        "tolerations": [{"operator": "Exists"}],
                        "initContainers": [
                            {
                                "name": "install-multus-binary",
                                "image": image,
                                "command": ["/usr/src/multus-cni/bin/install_multus"],
                                "args": ["--type", "thick"],
                                "securityContext": {"privileged": True},
                                "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
                            }
                        ],
                        "containers": [
                            {
                                "name": "kube-multus",
                                "image": image,
                                "command": ["/bin/bash", "-ec"],
                                "args": ["exec /usr/src/multus-cni/bin/multus-daemon $MULTUS_DAEMON_OPT"],
                                "securityContext": {"privileged": True},
                                "volumeMounts": [
                                    *mounts,
                                    {
                                        "name": "multus-daemon-config",
                                        "mountPath": "/etc/cni/net.d/multus.d",
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            *({"name": n, "hostPath": {"path": h}} for n, (h, _) in host.items()),
                            {"name": "multus-daemon-config", "configMap": {"name": "multus-daemon-config"}},
                        ],
                    },
                },
            },
        },
    ]


# --- running the CLI against a staged cluster ---------------------------------------------------
def staged(tmp_path: Path, distro: Distro, objs: Objects) -> Cluster:
    sim = Cluster(tmp_path / "sim", clock=Clock(start=START))
    sim.add(distro.node("node-1"))
    distro.put(sim.node_root("node-1"))
    if distro.read_only:
        sim.mount_read_only("node-1", *distro.read_only)
    for obj in objs:
        sim.add(obj)
    return sim


def diagnose(sim: Cluster) -> tuple[int, list[dict[str, Any]]]:
    r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
    assert r.exit_code in (0, 1), r.output
    return r.exit_code, findings(r)


def node_paths(sim: Cluster) -> dict[str, Any]:
    r = cli("show-paths", KC, str(sim.kubeconfig), "-o", "json")
    return json.loads(r.stdout)["installs"][0]["nodes"][0]  # type: ignore[no-any-return]


def plan(sim: Cluster) -> tuple[dict[str, str | None], list[Any], str]:
    """The values `fix --dry-run` would set (by change key, for every target), its manual steps, and
    what it says on stderr (who else manages the objects)."""
    r = cli("fix", KC, str(sim.kubeconfig), "--dry-run", "-o", "json")
    data = json.loads(r.stdout)
    assert r.exit_code == data["exitCode"] == 1, r.output  # 1: there is something to fix
    values = {c["key"]: c["value"] for t in data["targets"] for c in t["changes"]}
    return values, data["manual"], r.stderr


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # fix keeps its backups here


def multus_ready(sim: Cluster) -> bool:
    pods = [p for p in sim.store.list(sim.kind("pods")) if p["metadata"].get("ownerReferences")]
    return bool(pods) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []) for p in pods
    )


THIN = f"{MC}/multus-daemonset.yml"
THICK = f"{MC}/multus-daemonset-thick.yml"


def on(distro: str) -> Callable[[Path], Objects]:
    """The upstream thin manifest with that distribution's host dirs."""
    d = DISTROS[distro]
    return lambda shared: host_dirs(upstream(shared, THIN), d.conf, d.bin)


# What a user deploys on each distribution.
HEALTHY: dict[str, Callable[[Path], Objects]] = {
    "k3s": on("k3s"),
    "k3s-data-dir": on("k3s-data-dir"),
    "k3s-before-stable-bin": on("k3s-before-stable-bin"),  # the k3s docs' data/current/bin
    "rke2": lambda shared: rke2_multus(),
    "microk8s": lambda shared: upstream(shared, "canonical-microk8s-community-addons/multus.yaml"),
    "openshift": lambda shared: openshift_multus(),
    "kubeadm": lambda shared: upstream(shared, THICK),
    "kind": lambda shared: upstream(shared, THIN),
    "k0s": lambda shared: kubelet_dir(upstream(shared, THICK), "/var/lib/k0s/kubelet"),
    "gke": on("gke"),
    "crio": lambda shared: upstream(shared, f"{MC}/multus-daemonset-crio.yml"),
}


@pytest.mark.parametrize("distro", sorted(HEALTHY))
def test_the_manifest_for_each_distribution_is_healthy_there(shared: Path, tmp_path: Path, distro: str) -> None:
    d = DISTROS[distro]
    with staged(tmp_path, d, HEALTHY[distro](shared)) as sim:
        status, found = diagnose(sim)
        assert status == 0, [(f["code"], f["message"]) for f in found]
        assert [f for f in found if f["severity"] != "info"] == []
        paths = node_paths(sim)
        assert (paths["distribution"], paths["cniConfDir"], paths["cniBinDir"]) == (d.id.split("-")[0], d.conf, d.bin)
        assert paths["files"] == "checked" and all(p["ok"] for p in paths["paths"]), paths["paths"]
        assert multus_ready(sim) and helper_pods(sim) == []
        if distro == "k3s-before-stable-bin":
            assert {f["code"] for f in found} >= {"M113"}  # info: redeploy Multus after k3s upgrades


@dataclass(frozen=True)
class Mistake:
    """The most common mistake on a distribution: what diagnose must say, what fix must set."""

    distro: Distro
    manifest: Callable[[Path], Objects]
    codes: set[str]  # warning and error findings
    values: dict[str, str | None]  # the fix plan's changes, by key
    manual: set[str] = field(default_factory=set)  # codes of the plan's manual steps
    lasting: dict[str, Any] | None = None  # the chart values that make the fix last, when another tool owns it


K3S_DEFAULT = DISTROS["k3s"]
VANILLA = "/etc/cni/net.d", "/opt/cni/bin"


def kubeconfig_in(conf: str) -> str:
    return f"{conf}/multus.d/multus.kubeconfig"


def moved(distro: Distro, *, kubeconfig: bool = True) -> dict[str, str | None]:
    """The plan for a thin manifest whose host dirs are not that distribution's."""
    values: dict[str, str | None] = {"ds.volume.cni.hostPath": distro.conf, "ds.volume.cnibin.hostPath": distro.bin}
    if kubeconfig:
        values["ds.arg.--multus-kubeconfig-file-host"] = kubeconfig_in(distro.conf)
    return values


MISTAKES = {
    # Upstream paths where the distribution keeps its CNI dirs elsewhere: Multus crash-loops, its
    # binary and config land where the runtime never looks.
    "k3s-upstream-paths": Mistake(
        K3S_DEFAULT, lambda shared: upstream(shared, THIN), {"M105", "M107", "M108", "M201"}, moved(K3S_DEFAULT)
    ),
    "k3s-data-dir-hard-coded-default": Mistake(
        DISTROS["k3s-data-dir"],
        on("k3s"),
        {"M105", "M107", "M108", "M201"},
        moved(DISTROS["k3s-data-dir"]),
    ),
    "microk8s-upstream-paths": Mistake(
        DISTROS["microk8s"],
        lambda shared: upstream(shared, THIN),
        {"M105", "M107", "M108", "M201"},
        moved(DISTROS["microk8s"]),
    ),
    # GKE: the runtime cannot create /opt/cni/bin on the read-only /opt; Multus never starts.
    "gke-upstream-paths": Mistake(
        DISTROS["gke"],
        lambda shared: upstream(shared, THIN),
        {"M108", "M201"},
        {"ds.volume.cnibin.hostPath": "/home/kubernetes/bin"},
    ),
    # CRI-O searches only its plugin_dirs: the binary lands in /opt/cni/bin, which is not one.
    "crio-upstream-thin": Mistake(
        DISTROS["crio"],
        lambda shared: upstream(shared, THIN),
        {"M108"},
        {"ds.volume.cnibin.hostPath": "/usr/libexec/cni"},
    ),
    # OpenShift with the operator's Multus disabled (disableMultiNetwork): OVN-Kubernetes writes the
    # system dir, and a user's upstream thick Multus must use OpenShift's dirs, binDir following.
    "openshift-upstream-thick": Mistake(
        replace(DISTROS["openshift"], primary_dir=None),
        lambda shared: upstream(shared, THICK),
        {"M106", "M107", "M108", "M203"},
        {
            "ds.volume.cni.hostPath": "/etc/kubernetes/cni/net.d",
            "ds.volume.cnibin.hostPath": "/var/lib/cni/bin",
            "ds.mount.cnibin.mountPath": "/var/lib/cni/bin",
            "daemon_config.binDir": "/var/lib/cni/bin",
        },
        {"M203"},
    ),
    # RKE2 with the k3s docs' chart values: k3s's dirs do not exist on RKE2.
    "rke2-k3s-values": Mistake(
        DISTROS["rke2"],
        lambda shared: rke2_multus(K3S_DEFAULT.conf, f"{K3S}/data/current/bin"),
        {"M105", "M107", "M108", "M201"},
        moved(DISTROS["rke2"]),
        # The Helm controller re-renders the DaemonSet: the fix lasts as a HelmChartConfig, where the
        # autoconfig dir (rendered from its own value) must follow confDir.
        lasting={
            "config": {
                "cni_conf": {
                    "confDir": "/etc/cni/net.d",
                    "multusAutoconfigDir": "/etc/cni/net.d",
                    "binDir": "/opt/cni/bin",
                    "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
                }
            }
        },
    ),
    # k0s, thick: the CNI dirs are the usual ones, but its kubelet's root dir is not.
    "k0s-upstream-kubelet-dir": Mistake(
        DISTROS["k0s"],
        lambda shared: upstream(shared, THICK),
        {"M125"},
        {"ds.volume.host-var-lib-kubelet.hostPath": "/var/lib/k0s/kubelet"},
    ),
    # kubeadm, thick: binDir given as the pod path; under chrootDir it must be the host's.
    "kubeadm-thick-bindir-pod-path": Mistake(
        DISTROS["kubeadm"],
        lambda shared: daemon_config(upstream(shared, THICK), binDir="/host/opt/cni/bin"),
        {"M106"},
        {"daemon_config.binDir": "/opt/cni/bin"},
    ),
    # kind, thin: the kubeconfig written into the host's 00-multus.conf as the pod sees it.
    "kind-kubeconfig-pod-path": Mistake(
        DISTROS["kind"],
        lambda shared: thin_arg(
            upstream(shared, THIN), f"--multus-kubeconfig-file-host=/host{kubeconfig_in(VANILLA[0])}"
        ),
        {"M104"},
        {"ds.arg.--multus-kubeconfig-file-host": kubeconfig_in(VANILLA[0])},
    ),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_the_common_mistake_on_each_distribution_is_found_and_planned(shared: Path, tmp_path: Path, case: str) -> None:
    m = MISTAKES[case]
    with staged(tmp_path, m.distro, m.manifest(shared)) as sim:
        status, found = diagnose(sim)
        assert status == 1
        assert {f["code"] for f in found if f["severity"] != "info"} == m.codes, found
        values, manual, said = plan(sim)
        assert values == m.values
        assert {step.split()[0] for step in manual} == m.manual, manual
        if m.lasting is None:
            assert "managed by" not in said
        else:
            hcc = yaml.safe_load(said[said.index("apiVersion: helm.cattle.io/v1") :])
            assert (hcc["kind"], hcc["metadata"]) == (
                "HelmChartConfig",
                {"name": "rke2-multus", "namespace": "kube-system"},
            )
            assert yaml.safe_load(hcc["spec"]["valuesContent"]) == m.lasting


def fixed(sim: Cluster) -> None:
    """`fix --yes` applies the plan, Multus comes up Ready, and a new diagnosis is clean."""
    r = cli("fix", KC, str(sim.kubeconfig), "--yes")
    assert r.exit_code == 0, r.output
    assert "fixed and verified" in r.stderr
    assert multus_ready(sim) and helper_pods(sim) == []
    status, found = diagnose(sim)
    assert status == 0 and [f for f in found if f["severity"] != "info"] == []


@pytest.mark.parametrize(
    "case",
    [
        "k3s-data-dir-hard-coded-default",
        "gke-upstream-paths",
        "microk8s-upstream-paths",
        "crio-upstream-thin",
        "k0s-upstream-kubelet-dir",
    ],
)
def test_fix_repairs_the_common_mistake(shared: Path, tmp_path: Path, case: str) -> None:
    m = MISTAKES[case]
    with staged(tmp_path, m.distro, m.manifest(shared)) as sim:
        fixed(sim)
        root = sim.node_root("node-1")
        assert any((root / m.distro.bin.lstrip("/") / name).is_file() for name in ("multus", "multus-shim"))
        assert (root / m.distro.conf.lstrip("/") / "00-multus.conf").is_file() or (
            root / m.distro.conf.lstrip("/") / "00-multus.conflist"
        ).is_file()


def test_k3s_upgrade_leaves_multus_in_the_old_release_dir_and_fix_moves_it_to_the_stable_one(
    shared: Path, tmp_path: Path
) -> None:
    """Before Oct 2024 k3s kept its plugins in data/<hash>/bin, reached through data/current. The
    hostPath is resolved when the pod starts: after an upgrade re-points `current` (to a release
    that has the stable data/cni), the running Multus pod still writes into the old release's dir."""
    old = DISTROS["k3s-before-stable-bin"]
    with staged(tmp_path, old, HEALTHY["k3s-before-stable-bin"](shared)) as sim:
        root = sim.node_root("node-1")
        data = root / K3S.lstrip("/") / "data"
        assert (data / HASH_A / "bin" / "multus").is_file() and diagnose(sim)[0] == 0
        k3s_release(root, K3S, HASH_B, stable=True)  # k3s v1.30.6 starts: new release dir, data/cni
        (root / old.runtime_config[0].lstrip("/")).write_text(containerd_toml(old.conf, f"{K3S}/data/cni"))
        node = sim.store.get(sim.kind("nodes"), "", "node-1")
        node["status"]["nodeInfo"]["kubeletVersion"] = "v1.30.6+k3s1"
        sim.store.replace(sim.kind("nodes"), node)
        sim.sync()
        assert not (data / HASH_B / "bin" / "multus").exists()  # the running pod's mount stayed on HASH_A
        status, found = diagnose(sim)
        assert status == 1
        assert {(f["code"], f["severity"]) for f in found if f["severity"] != "info"} == {("M113", "warning")}
        assert plan(sim)[0] == {"ds.volume.cnibin.hostPath": f"{K3S}/data/cni"}
        fixed(sim)
        assert (data / "cni" / "multus").is_file()
        assert node_paths(sim)["cniBinDir"] == f"{K3S}/data/cni"


def test_the_node_s_runtime_config_wins_over_what_the_api_suggests(shared: Path, tmp_path: Path) -> None:
    """A kubeadm node (by its labels: /opt/cni/bin) whose containerd uses the distribution package's
    plugin dir: show-paths follows config.toml, and the upstream manifest's bin volume is wrong."""
    debian = replace(
        DISTROS["kubeadm"],
        bin="/usr/lib/cni",
        runtime_config=("/etc/containerd/config.toml", containerd_toml("/etc/cni/net.d", "/usr/lib/cni")),
    )
    with staged(tmp_path, debian, upstream(shared, THIN)) as sim:
        paths = node_paths(sim)
        assert paths["distribution"] == "kubeadm"
        assert (paths["cniConfDir"], paths["cniBinDir"]) == ("/etc/cni/net.d", "/usr/lib/cni")
        assert paths["dirsSource"] == "node file /etc/containerd/config.toml"
        status, found = diagnose(sim)
        assert status == 1 and {f["code"] for f in found if f["severity"] != "info"} == {"M108"}
        assert plan(sim)[0] == {"ds.volume.cnibin.hostPath": "/usr/lib/cni"}
        fixed(sim)
        assert (sim.node_root("node-1") / "usr/lib/cni/multus").is_file()


def whereabouts_daemonset() -> dict[str, Any]:
    """Whereabouts as its own manifest installs it: its binary into the host's /opt/cni/bin."""
    labels = {"app": "whereabouts"}
    container = {
        "name": "whereabouts",
        "image": "ghcr.io/k8snetworkplumbingwg/whereabouts:v0.8.0",
        "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "whereabouts", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}}],
                },
            },
        },
    }


@pytest.mark.parametrize("whereabouts_ds", [True, False], ids=["installed-by-daemonset", "installed-by-hand"])
def test_plugins_in_opt_cni_bin_on_k3s_are_read_when_a_daemonset_shows_opt_exists(
    shared: Path, tmp_path: Path, whereabouts_ds: bool
) -> None:
    """Thin Multus looks for delegates in /opt/cni/bin before the runtime's dir, and whereabouts
    installs there. No Multus volume shows /opt exists on a k3s node, so the helper mounts it only
    when a settled DaemonSet running there mounts it; otherwise the plugins are a check by hand."""
    d = DISTROS["k3s"]
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "macvlan-whereabouts", "namespace": "default"},
        "spec": {
            "config": json.dumps(
                {
                    "cniVersion": "0.3.1",
                    "type": "macvlan",
                    "master": "eth0",
                    "ipam": {"type": "whereabouts", "range": "10.5.0.0/24"},
                }
            )
        },
    }
    objs = [*on("k3s")(shared), nad, *([whereabouts_daemonset()] if whereabouts_ds else [])]
    with staged(tmp_path, d, objs) as sim:
        for plugin in ("macvlan", "whereabouts"):
            real = sim.node_root("node-1") / "opt/cni/bin" / plugin
            real.parent.mkdir(parents=True, exist_ok=True)
            real.write_text(f"{plugin} plugin\n")
        status, found = diagnose(sim)
        problems = [f for f in found if f["severity"] != "info"]
        if whereabouts_ds:
            assert status == 0, [(f["code"], f["message"]) for f in problems]
        else:
            assert {(f["code"], f["severity"]) for f in problems} == {("M401", "warning")}
            assert all("not captured" in " ".join(f["evidence"]) for f in problems)
        assert helper_pods(sim) == []


def test_thick_daemon_config_cni_version_above_the_primary_s_is_found_and_fixed(shared: Path, tmp_path: Path) -> None:
    """The daemon refuses a 0.3.1 primary under its own 0.4.0 and exits before it writes
    00-multus.conf, so only the daemon config and the primary's file show the cause."""
    calico = replace(DISTROS["kubeadm"], primary=("10-calico.conflist", CALICO))
    with staged(tmp_path, calico, daemon_config(upstream(shared, THICK), cniVersion="0.4.0")) as sim:
        status, found = diagnose(sim)
        assert status == 1
        m212 = next(f for f in found if f["code"] == "M212")
        assert m212["object"] == "ConfigMap kube-system/multus-daemon-config key daemon-config.json"
        assert (m212["current"], m212["expected"]) == ("0.4.0", "0.3.1")
        assert plan(sim)[0] == {"daemon_config.cniVersion": "0.3.1"}
        fixed(sim)
