"""Distribution detection and the runtime's CNI dirs (kubectl_multus.core.distros)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubectl_multus.core.distros import GENERIC, TABLE, detect, k3s, runtime_config_dirs, runtime_dirs
from kubectl_multus.core.snapshot import Entry, NodeFiles

K3S = "/var/lib/rancher/k3s"


def node(
    *,
    kubelet: str = "v1.31.0",
    runtime: str = "containerd://1.7.20",
    provider: str = "",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "node-1", "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"providerID": provider} if provider else {},
        "status": {"nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime}},
    }


def k3s_node(*args: str, kubelet: str = "v1.31.4+k3s1") -> dict[str, Any]:
    annotations = {"k3s.io/node-args": json.dumps(["server", *args])} if args else None
    return node(kubelet=kubelet, annotations=annotations)


def files(entries: dict[str, Entry]) -> NodeFiles:
    return NodeFiles(entries)


def conf_file() -> Entry:
    return Entry("file", "{}")


# --- detect -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "name", "conf_dir", "bin_dir", "why"),
    [
        pytest.param(
            k3s_node(),
            "k3s",
            f"{K3S}/agent/etc/cni/net.d",
            f"{K3S}/data/cni",
            "kubelet v1.31.4+k3s1",
            id="k3s-from-kubelet-version",
        ),
        pytest.param(
            k3s_node("--data-dir", "/srv/k3s"),
            "k3s",
            "/srv/k3s/agent/etc/cni/net.d",
            "/srv/k3s/data/cni",
            "kubelet v1.31.4+k3s1, --data-dir /srv/k3s",
            id="k3s-data-dir-as-separate-word",
        ),
        pytest.param(
            k3s_node("--data-dir=/srv/k3s/"),
            "k3s",
            "/srv/k3s/agent/etc/cni/net.d",
            "/srv/k3s/data/cni",
            "kubelet v1.31.4+k3s1, --data-dir /srv/k3s/",
            id="k3s-data-dir-with-equals-and-trailing-slash",
        ),
        pytest.param(
            k3s_node("--flannel-backend", "none"),
            "k3s",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "kubelet v1.31.4+k3s1, --flannel-backend=none",
            id="k3s-without-flannel-uses-containerd-defaults",
        ),
        pytest.param(
            k3s_node("--flannel-backend", "vxlan"),
            "k3s",
            f"{K3S}/agent/etc/cni/net.d",
            f"{K3S}/data/cni",
            "kubelet v1.31.4+k3s1",
            id="k3s-with-other-flannel-backend",
        ),
        pytest.param(
            node(kubelet="v1.33.5+rke2r1"),
            "rke2",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "kubelet v1.33.5+rke2r1",
            id="rke2-from-kubelet-version",
        ),
        pytest.param(
            node(labels={"microk8s.io/cluster": "true"}),
            "microk8s",
            "/var/snap/microk8s/current/args/cni-network",
            "/var/snap/microk8s/current/opt/cni/bin",
            "label microk8s.io/cluster",
            id="microk8s-from-label",
        ),
        pytest.param(
            node(runtime="cri-o://1.31.1", labels={"node.openshift.io/os_id": "rhcos"}),
            "openshift",
            "/etc/kubernetes/cni/net.d",
            "/var/lib/cni/bin",
            "OpenShift node labels",
            id="openshift-label-beats-cri-o-runtime",
        ),
        pytest.param(
            node(runtime="cri-o://1.31.1"),
            "crio",
            "/etc/cni/net.d",
            "/usr/libexec/cni",
            "runtime cri-o://1.31.1",
            id="cri-o-from-runtime-version",
        ),
        pytest.param(
            node(provider="kind://docker/kind/kind-worker"),
            "kind",
            "/etc/cni/net.d",
            "/opt/cni/bin",
            "providerID kind://docker/kind/kind-worker",
            id="kind-from-provider-id",
        ),
        pytest.param(
            node(provider="gce://proj/us-central1-a/gke-n1", labels={"cloud.google.com/gke-nodepool": "default-pool"}),
            "gke",
            "/etc/cni/net.d",
            "/home/kubernetes/bin",
            "GKE node labels",
            id="gke-from-provider-id-and-label",
        ),
    ],
)
def test_detect_recognises_distribution(n: dict[str, Any], name: str, conf_dir: str, bin_dir: str, why: str) -> None:
    distro, reason, confident = detect(n)
    assert (distro.name, distro.conf_dir, distro.bin_dir, reason, confident) == (name, conf_dir, bin_dir, why, True)


def test_detect_k3s_data_dir_moves_runtime_config_too() -> None:
    distro, _, _ = detect(k3s_node("--data-dir", "/srv/k3s"))
    assert distro.data_dir == "/srv/k3s"
    assert distro.runtime_configs == ("/srv/k3s/agent/etc/containerd/config.toml",)


@pytest.mark.parametrize(
    "n",
    [
        pytest.param(node(), id="plain-containerd-node"),
        pytest.param(node(provider="gce://proj/zone/vm"), id="gce-without-gke-label"),
        pytest.param({}, id="empty-node-object"),
    ],
)
def test_detect_unknown_node_is_generic_and_not_confident(n: dict[str, Any]) -> None:
    assert detect(n) == (GENERIC, "no distribution marker; containerd defaults", False)


@pytest.mark.parametrize(
    "annotation",
    [pytest.param("not json", id="invalid-json"), pytest.param('{"--data-dir": "/srv"}', id="json-not-a-list")],
)
def test_detect_k3s_ignores_unreadable_node_args(annotation: str) -> None:
    n = node(kubelet="v1.31.4+k3s1", annotations={"k3s.io/node-args": annotation})
    assert detect(n) == (k3s(), "kubelet v1.31.4+k3s1", True)


# --- runtime_config_dirs ----------------------------------------------------------------------------------------

CONTAINERD_1 = """
version = 2
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/local/cni/bin"
  conf_dir = "/usr/local/cni/net.d/"
  # conf_dir = "/commented/out"
"""

CONTAINERD_2 = """
version = 3
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["/opt/cni/custom-bin", "/opt/cni/bin"]
  conf_dir = "/etc/cni/custom.d"
"""

MICROK8S_TEMPLATE = """
[plugins."io.containerd.grpc.v1.cri".cni]
    # cni binaries here.
    bin_dir = "${SNAP_DATA}/opt/cni/bin"
    conf_dir = "${SNAP_DATA}/args/cni-network"
"""

K3S_TEMPLATE = """
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{{ .NodeConfig.AgentConfig.CNIBinDir }}"
  conf_dir = "{{ .NodeConfig.AgentConfig.CNIConfDir }}"
"""


@pytest.mark.parametrize(
    ("text", "distro_name", "expected"),
    [
        pytest.param(
            CONTAINERD_1, "kubeadm", ("/usr/local/cni/net.d", "/usr/local/cni/bin"), id="containerd-1-conf-and-bin-dir"
        ),
        pytest.param(
            CONTAINERD_2, "kubeadm", ("/etc/cni/custom.d", "/opt/cni/custom-bin"), id="containerd-2-first-of-bin-dirs"
        ),
        pytest.param(
            MICROK8S_TEMPLATE,
            "microk8s",
            ("/var/snap/microk8s/current/args/cni-network", "/var/snap/microk8s/current/opt/cni/bin"),
            id="microk8s-template-snap-data-substituted",
        ),
        pytest.param(
            K3S_TEMPLATE,
            "k3s",
            (f"{K3S}/agent/etc/cni/net.d", None),
            id="k3s-template-known-conf-dir-unknown-bin-dir",
        ),
        pytest.param("", "kubeadm", (None, None), id="empty-config"),
    ],
)
def test_runtime_config_dirs_reads_named_dirs(
    text: str, distro_name: str, expected: tuple[str | None, str | None]
) -> None:
    assert runtime_config_dirs(text, TABLE[distro_name]) == expected


# --- runtime_dirs -----------------------------------------------------------------------------------------------


def test_runtime_dirs_without_files_uses_the_table() -> None:
    dirs = runtime_dirs(k3s_node(), None)
    assert (dirs.distro.name, dirs.conf_dir, dirs.bin_dir, dirs.source, dirs.confident) == (
        "k3s",
        f"{K3S}/agent/etc/cni/net.d",
        f"{K3S}/data/cni",
        "k3s defaults (kubelet v1.31.4+k3s1)",
        True,
    )


def test_runtime_dirs_runtime_config_file_wins_over_the_table() -> None:
    config = f"{K3S}/agent/etc/containerd/config.toml"
    nf = files({config: Entry("file", 'conf_dir = "/etc/cni/net.d"\nbin_dir = "/opt/cni/bin"\n')})
    dirs = runtime_dirs(k3s_node(), nf)
    assert (dirs.distro.name, dirs.conf_dir, dirs.bin_dir, dirs.source, dirs.confident) == (
        "k3s",
        "/etc/cni/net.d",
        "/opt/cni/bin",
        f"node file {config}",
        True,
    )


def test_runtime_dirs_runtime_config_naming_only_bin_dir_keeps_table_conf_dir() -> None:
    nf = files({"/etc/containerd/config.toml": Entry("file", 'bin_dir = "/usr/lib/cni"\n')})
    dirs = runtime_dirs(node(provider="kind://docker/kind/kind-worker"), nf)
    assert (dirs.conf_dir, dirs.bin_dir, dirs.source) == (
        "/etc/cni/net.d",
        "/usr/lib/cni",
        "node file /etc/containerd/config.toml",
    )


def test_runtime_dirs_generic_node_with_k3s_network_config_becomes_k3s() -> None:
    nf = files(
        {
            "/etc/cni/net.d": Entry("dir"),
            f"{K3S}/agent/etc/cni/net.d/10-flannel.conflist": conf_file(),
            f"{K3S}/data/cni/flannel": Entry("file"),
        }
    )
    dirs = runtime_dirs(node(), nf)
    assert (dirs.distro.name, dirs.conf_dir, dirs.bin_dir, dirs.source, dirs.confident) == (
        "k3s",
        f"{K3S}/agent/etc/cni/net.d",
        f"{K3S}/data/cni",
        f"node files (network config found in {K3S}/agent/etc/cni/net.d)",
        True,
    )


def test_runtime_dirs_confident_distro_keeps_its_name_when_files_move_conf_dir() -> None:
    nf = files(
        {"/etc/cni/net.d": Entry("dir"), f"{K3S}/agent/etc/cni/net.d/10-flannel.conflist": conf_file()},
    )
    dirs = runtime_dirs(node(provider="kind://docker/kind/kind-worker"), nf)
    assert (dirs.distro.name, dirs.conf_dir, dirs.bin_dir, dirs.confident) == (
        "kind",
        f"{K3S}/agent/etc/cni/net.d",
        "/opt/cni/bin",
        True,
    )


@pytest.mark.parametrize(
    "name",
    [pytest.param("00-multus.conf", id="only-multus-config"), pytest.param("README", id="not-a-config-file")],
)
def test_runtime_dirs_dir_without_primary_config_does_not_count(name: str) -> None:
    nf = files({f"{K3S}/agent/etc/cni/net.d/{name}": conf_file()})
    dirs = runtime_dirs(node(), nf)
    assert (dirs.distro.name, dirs.conf_dir, dirs.bin_dir, dirs.confident) == (
        "kubeadm",
        "/etc/cni/net.d",
        "/opt/cni/bin",
        False,
    )


def test_runtime_dirs_old_k3s_without_data_cni_uses_data_current_bin() -> None:
    nf = files(
        {
            f"{K3S}/agent/etc/cni/net.d/10-flannel.conflist": conf_file(),
            f"{K3S}/data/current": Entry("link", target="3ccf8a82"),
            f"{K3S}/data/3ccf8a82/bin/flannel": Entry("file"),
        }
    )
    dirs = runtime_dirs(k3s_node(kubelet="v1.31.4+k3s1"), nf)
    assert (dirs.conf_dir, dirs.bin_dir, dirs.source) == (
        f"{K3S}/agent/etc/cni/net.d",
        f"{K3S}/data/current/bin",
        f"k3s defaults (kubelet v1.31.4+k3s1); node has no {K3S}/data/cni, using {K3S}/data/current/bin",
    )


@pytest.mark.parametrize(
    ("kubelet", "bin_dir"),
    [
        pytest.param("v1.27.4+k3s1", f"{K3S}/data/current/bin", id="minor-before-the-stable-dir"),
        pytest.param("v1.30.5+k3s1", f"{K3S}/data/current/bin", id="patch-before-the-oct-2024-release"),
        pytest.param("v1.30.6+k3s1", f"{K3S}/data/cni", id="oct-2024-release"),
        pytest.param("v1.33.1+k3s1", f"{K3S}/data/cni", id="later-minor"),
        pytest.param("unparseable+k3s", f"{K3S}/data/cni", id="unknown-version-assumes-current"),
    ],
)
def test_k3s_bin_dir_follows_the_release_without_node_files(kubelet: str, bin_dir: str) -> None:
    assert runtime_dirs(k3s_node(kubelet=kubelet), None).bin_dir == bin_dir


def test_old_k3s_node_files_with_data_cni_win_over_the_version() -> None:
    nf = files({f"{K3S}/data/cni/flannel": Entry("file")})
    assert runtime_dirs(k3s_node(kubelet="v1.27.4+k3s1"), nf).bin_dir == f"{K3S}/data/cni"


@pytest.mark.parametrize(
    ("roots", "extra"),
    [
        pytest.param(("/",), {f"{K3S}/data/cni/flannel": Entry("file")}, id="data-cni-present"),
        pytest.param(("/etc",), {}, id="data-cni-unknown-outside-roots"),
    ],
)
def test_runtime_dirs_k3s_keeps_data_cni_unless_known_absent(roots: tuple[str, ...], extra: dict[str, Entry]) -> None:
    entries = {
        f"{K3S}/agent/etc/cni/net.d/10-flannel.conflist": conf_file(),
        f"{K3S}/data/current": Entry("link", target="3ccf8a82"),
        f"{K3S}/data/3ccf8a82/bin/flannel": Entry("file"),
        **extra,
    }
    dirs = runtime_dirs(k3s_node(), NodeFiles(entries, roots))
    assert dirs.bin_dir == f"{K3S}/data/cni"


@pytest.mark.parametrize(
    ("stable", "bin_dir", "more"),
    [
        pytest.param(False, f"{K3S}/data/current/bin", (f"{K3S}/data/3ccf8a82/bin",), id="no-data-cni"),
        pytest.param(True, f"{K3S}/data/3ccf8a82/bin", (), id="data-cni-present-keeps-the-config"),
    ],
)
def test_old_k3s_config_naming_its_release_dir_is_reached_through_data_current(
    stable: bool, bin_dir: str, more: tuple[str, ...]
) -> None:
    """k3s before Oct 2024 writes data/<hash>/bin into config.toml; data/current/bin is that dir."""
    config = f'[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "{K3S}/data/3ccf8a82/bin"\n'
    entries = {
        f"{K3S}/agent/etc/containerd/config.toml": Entry("file", config),
        f"{K3S}/agent/etc/cni/net.d/10-flannel.conflist": conf_file(),
        f"{K3S}/data/current/bin/flannel": Entry("file"),
        **({f"{K3S}/data/cni/flannel": Entry("file")} if stable else {}),
    }
    dirs = runtime_dirs(k3s_node(kubelet="v1.30.4+k3s1"), files(entries))
    assert (dirs.bin_dir, dirs.more_bin_dirs) == (bin_dir, more)
    assert dirs.source.startswith(f"node file {K3S}/agent/etc/containerd/config.toml")
