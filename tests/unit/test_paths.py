"""Container paths, host paths and the mount table (kubectl_multus.core.paths)."""

from __future__ import annotations

import pytest

from kubectl_multus.core.paths import Location, MountTable, is_under, norm, repeated_run, strip_pod_prefix, undouble

K3S_CONF = "/var/lib/rancher/k3s/agent/etc/cni/net.d"


def host_path_volume(name: str, path: str) -> dict:
    return {"name": name, "hostPath": {"path": path}}


def mount(name: str, path: str, **extra: object) -> dict:
    return {"name": name, "mountPath": path, **extra}


def table(mounts: list[dict], volumes: list[dict]) -> MountTable:
    return MountTable.of({"name": "kube-multus", "volumeMounts": mounts}, volumes)


# --- norm -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/etc/cni/net.d", "/etc/cni/net.d", id="clean-path-unchanged"),
        pytest.param("/etc/cni/net.d/", "/etc/cni/net.d", id="trailing-slash-dropped"),
        pytest.param("/etc//cni/./net.d", "/etc/cni/net.d", id="double-slash-and-dot-collapsed"),
        pytest.param("/etc/cni/../cni/net.d", "/etc/cni/net.d", id="dot-dot-resolved"),
        pytest.param("/", "/", id="root-stays-root"),
        pytest.param("//", "/", id="double-slash-root-is-root"),
        pytest.param("///etc", "/etc", id="triple-leading-slash-collapsed"),
        pytest.param("", "", id="empty-stays-empty"),
    ],
)
def test_norm_returns_canonical_path(path: str, expected: str) -> None:
    assert norm(path) == expected


def test_norm_collapses_two_leading_slashes() -> None:
    assert norm("//etc/cni/net.d") == "/etc/cni/net.d"


# --- is_under ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        pytest.param("/etc/cni/net.d", "/etc/cni/net.d", True, id="path-equal-to-root"),
        pytest.param("/etc/cni/net.d/00-multus.conf", "/etc/cni/net.d", True, id="file-below-root"),
        pytest.param("/etc/cni/net.d/multus.d/x", "/etc/cni", True, id="deep-below-root"),
        pytest.param("/etc/cni/net.d2", "/etc/cni/net.d", False, id="sibling-sharing-a-prefix-is-not-under"),
        pytest.param("/etc/cni/net.d2/x", "/etc/cni/net.d", False, id="file-in-prefix-sibling-is-not-under"),
        pytest.param("/etc/cni", "/etc/cni/net.d", False, id="parent-is-not-under-child"),
        pytest.param("/opt/cni/bin", "/", True, id="everything-is-under-slash"),
        pytest.param("/etc/cni/net.d/", "/etc/cni/net.d/", True, id="trailing-slashes-ignored"),
        pytest.param("/etc/cni/../x", "/etc/cni", False, id="dot-dot-leaves-root"),
        pytest.param("//etc/cni/net.d", "/etc/cni", True, id="leading-double-slash-is-one-slash"),
    ],
)
def test_is_under_compares_whole_segments(path: str, root: str, expected: bool) -> None:
    assert is_under(path, root) is expected


# --- undouble / repeated_run ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fixed", "run"),
    [
        pytest.param(
            "/host/var/lib/rancher/k3s/agent/var/lib/rancher/k3s/agent/etc/cni/net.d",
            "/host/var/lib/rancher/k3s/agent/etc/cni/net.d",
            "/var/lib/rancher/k3s/agent",
            id="k3s-agent-prefix-applied-twice",
        ),
        pytest.param("/host/host/etc/cni/net.d", "/host/etc/cni/net.d", "/host", id="pod-prefix-host-twice"),
        pytest.param("/hostroot/hostroot/etc", "/hostroot/etc", "/hostroot", id="pod-prefix-hostroot-twice"),
        pytest.param("/a/b/c/b/c", "/a/b/c", "/b/c", id="two-segment-run-at-the-end"),
        pytest.param("/etc/cni/etc/cni/net.d/", "/etc/cni/net.d", "/etc/cni", id="trailing-slash-normalised"),
    ],
)
def test_undouble_removes_repeated_run_and_repeated_run_names_it(path: str, fixed: str, run: str) -> None:
    assert undouble(path) == fixed
    assert repeated_run(path) == run


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/opt/cni/bin", id="ordinary-path"),
        pytest.param("/a/bin/bin", id="single-ordinary-segment-repeated-is-too-weak"),
        pytest.param("/etc/cni/net.d/net.d", id="single-net.d-repeated-is-too-weak"),
        pytest.param("/", id="root"),
    ],
)
def test_undouble_and_repeated_run_return_none_without_a_repeated_run(path: str) -> None:
    assert undouble(path) is None
    assert repeated_run(path) is None


# --- strip_pod_prefix -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "extra", "expected"),
    [
        pytest.param("/host/var/lib/x", (), "/var/lib/x", id="host-prefix-stripped"),
        pytest.param("/hostroot/etc/cni/net.d", (), "/etc/cni/net.d", id="hostroot-prefix-stripped"),
        pytest.param("/host/etc/cni/net.d/", (), "/etc/cni/net.d", id="trailing-slash-normalised"),
        pytest.param("/host", (), None, id="bare-prefix-is-not-a-path-below-it"),
        pytest.param("/hostile/etc", (), None, id="prefix-must-be-a-whole-segment"),
        pytest.param("/etc/cni/net.d", (), None, id="no-prefix"),
        pytest.param("/node/etc/cni", ("/node",), "/etc/cni", id="extra-prefix-stripped"),
        pytest.param("/etc/cni", ("/",), None, id="extra-slash-prefix-ignored"),
    ],
)
def test_strip_pod_prefix(path: str, extra: tuple[str, ...], expected: str | None) -> None:
    assert strip_pod_prefix(path, extra) == expected


# --- MountTable.resolve / host_path -----------------------------------------------------------------------------

NESTED = table(
    [
        mount("cni", "/host/etc/cni/net.d"),
        mount("multus-d", "/host/etc/cni/net.d/multus.d"),
        mount("cnibin", "/host/opt/cni/bin", readOnly=True),
        mount("tmp", "/tmp"),
    ],
    [
        host_path_volume("cni", K3S_CONF),
        host_path_volume("multus-d", "/srv/multus.d"),
        host_path_volume("cnibin", "/var/lib/rancher/k3s/data/cni"),
        {"name": "tmp", "emptyDir": {}},
    ],
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/host/etc/cni/net.d", K3S_CONF, id="mount-path-itself-is-the-host-path"),
        pytest.param("/host/etc/cni/net.d/00-multus.conf", f"{K3S_CONF}/00-multus.conf", id="file-below-mount"),
        pytest.param("/host/etc/cni/net.d/multus.d", "/srv/multus.d", id="nested-mount-wins-at-its-root"),
        pytest.param(
            "/host/etc/cni/net.d/multus.d/multus.kubeconfig",
            "/srv/multus.d/multus.kubeconfig",
            id="nested-mount-wins-below-it",
        ),
        pytest.param("/host/etc/cni/net.d/multus.d2/x", f"{K3S_CONF}/multus.d2/x", id="prefix-sibling-of-nested-mount"),
        pytest.param("/host/etc/cni/net.d//./10-flannel.conflist/", f"{K3S_CONF}/10-flannel.conflist", id="unclean"),
        pytest.param("/host/opt/cni/bin/multus", "/var/lib/rancher/k3s/data/cni/multus", id="read-only-still-maps"),
    ],
)
def test_host_path_of_container_path_uses_longest_mount(path: str, expected: str) -> None:
    assert NESTED.host_path(path) == expected


def test_resolve_host_mount_reports_the_mount_it_went_through() -> None:
    loc = NESTED.resolve("/host/etc/cni/net.d/multus.d/daemon-config.json")
    assert loc.kind == "host"
    assert loc.host_path == "/srv/multus.d/daemon-config.json"
    assert loc.mount is not None
    assert loc.mount.volume.name == "multus-d"
    assert loc.mount.mount_path == "/host/etc/cni/net.d/multus.d"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/etc/cni/net.d", id="host-path-not-mounted-in-container"),
        pytest.param("/host/etc/cni/net.d2", id="prefix-sibling-of-mount"),
        pytest.param("/host", id="parent-of-mounts"),
    ],
)
def test_resolve_path_under_no_mount_is_container_filesystem(path: str) -> None:
    assert NESTED.resolve(path) == Location("container")
    assert NESTED.host_path(path) is None


def test_resolve_empty_dir_is_ephemeral_and_has_no_host_path() -> None:
    loc = NESTED.resolve("/tmp/multus.sock")
    assert loc.kind == "ephemeral"
    assert loc.host_path is None
    assert loc.mount is not None and loc.mount.volume.kind == "emptyDir"
    assert NESTED.host_path("/tmp/multus.sock") is None


@pytest.mark.parametrize(
    ("sub_path", "path", "expected"),
    [
        pytest.param("agent/etc/cni/net.d", "/host/etc/cni/net.d", K3S_CONF, id="mount-root-is-subpath"),
        pytest.param(
            "agent/etc/cni/net.d", "/host/etc/cni/net.d/00-multus.conf", f"{K3S_CONF}/00-multus.conf", id="file"
        ),
    ],
)
def test_resolve_host_path_with_sub_path_joins_sub_path(sub_path: str, path: str, expected: str) -> None:
    mt = table(
        [mount("k3s", "/host/etc/cni/net.d", subPath=sub_path)], [host_path_volume("k3s", "/var/lib/rancher/k3s")]
    )
    assert mt.host_path(path) == expected


CONFIG_MAPS = table(
    [
        mount("with-items", "/etc/cni/net.d/multus.d"),
        mount("without-items", "/etc/multus"),
        mount("single-file", "/etc/daemon/daemon-config.json", subPath="cni-conf.json"),
    ],
    [
        {
            "name": "with-items",
            "configMap": {"name": "multus-daemon-config", "items": [{"key": "cni-conf.json", "path": "daemon.json"}]},
        },
        {"name": "without-items", "configMap": {"name": "multus-cni-config"}},
        {"name": "single-file", "configMap": {"name": "multus-single"}},
    ],
)


@pytest.mark.parametrize(
    ("path", "config_map", "key"),
    [
        pytest.param("/etc/cni/net.d/multus.d/daemon.json", "multus-daemon-config", "cni-conf.json", id="item-path"),
        pytest.param("/etc/cni/net.d/multus.d/other.json", "multus-daemon-config", None, id="file-not-in-items"),
        pytest.param("/etc/multus/cni-conf.json", "multus-cni-config", "cni-conf.json", id="no-items-file-is-key"),
        pytest.param("/etc/multus", "multus-cni-config", None, id="no-items-mount-root-has-no-key"),
        pytest.param("/etc/daemon/daemon-config.json", "multus-single", "cni-conf.json", id="sub-path-is-key"),
    ],
)
def test_resolve_config_map_finds_the_key(path: str, config_map: str, key: str | None) -> None:
    loc = CONFIG_MAPS.resolve(path)
    assert (loc.kind, loc.config_map, loc.key, loc.host_path) == ("configMap", config_map, key, None)
    assert CONFIG_MAPS.host_path(path) is None


def test_of_normalises_trailing_slashes_and_keeps_mount_attributes() -> None:
    mt = table([mount("netns", "/run/netns/", readOnly=True)], [host_path_volume("netns", "/run/netns/")])
    (m,) = mt.mounts
    assert (m.volume.kind, m.volume.host_path, m.mount_path, m.sub_path, m.read_only) == (
        "hostPath",
        "/run/netns",
        "/run/netns",
        "",
        True,
    )
    assert mt.host_path("/run/netns/cni-1234") == "/run/netns/cni-1234"
    assert mt.to_container("/run/netns/cni-1234") == "/run/netns/cni-1234"


def test_of_mount_naming_no_volume_gets_kind_missing() -> None:
    mt = table([mount("ghost", "/ghost")], [])
    assert mt.mounts[0].volume.kind == "missing"


# --- MountTable.to_container ------------------------------------------------------------------------------------

HOSTROOT_AND_CNI = table(
    [mount("hostroot", "/hostroot"), mount("cni", "/host/etc/cni/net.d")],
    [host_path_volume("hostroot", "/"), host_path_volume("cni", "/etc/cni/net.d")],
)


@pytest.mark.parametrize(
    ("host_path", "expected"),
    [
        pytest.param("/etc/cni/net.d", "/host/etc/cni/net.d", id="specific-host-path-beats-root-volume"),
        pytest.param(
            "/etc/cni/net.d/00-multus.conf", "/host/etc/cni/net.d/00-multus.conf", id="file-via-specific-volume"
        ),
        pytest.param("/opt/cni/bin", "/hostroot/opt/cni/bin", id="only-root-volume-reaches-it"),
        pytest.param("/etc/cni/net.d2", "/hostroot/etc/cni/net.d2", id="prefix-sibling-goes-via-root"),
        pytest.param("/", "/hostroot", id="host-root-itself"),
    ],
)
def test_to_container_prefers_most_specific_host_path(host_path: str, expected: str) -> None:
    assert HOSTROOT_AND_CNI.to_container(host_path) == expected


def test_to_container_without_a_covering_volume_is_none() -> None:
    mt = table([mount("cni", "/host/etc/cni/net.d")], [host_path_volume("cni", "/etc/cni/net.d")])
    assert mt.to_container("/opt/cni/bin") is None


def test_to_container_ignores_non_host_path_volumes() -> None:
    assert CONFIG_MAPS.to_container("/etc/multus/cni-conf.json") is None


@pytest.mark.parametrize(
    ("writable", "expected"),
    [
        pytest.param(False, "/host/etc/cni/net.d/x", id="read-only-mount-allowed-for-reading"),
        pytest.param(True, "/hostroot/etc/cni/net.d/x", id="writable-skips-read-only-mount"),
    ],
)
def test_to_container_writable_skips_read_only_mounts(writable: bool, expected: str) -> None:
    mt = table(
        [mount("hostroot", "/hostroot"), mount("cni", "/host/etc/cni/net.d", readOnly=True)],
        [host_path_volume("hostroot", "/"), host_path_volume("cni", "/etc/cni/net.d")],
    )
    assert mt.to_container("/etc/cni/net.d/x", writable=writable) == expected


def test_to_container_writable_with_only_read_only_mounts_is_none() -> None:
    mt = table([mount("cni", "/host/etc/cni/net.d", readOnly=True)], [host_path_volume("cni", "/etc/cni/net.d")])
    assert mt.to_container("/etc/cni/net.d", writable=True) is None


def test_to_container_with_sub_path_maps_from_the_sub_directory() -> None:
    mt = table(
        [mount("k3s", "/host/etc/cni/net.d", subPath="agent/etc/cni/net.d")],
        [host_path_volume("k3s", "/var/lib/rancher/k3s")],
    )
    assert mt.to_container(f"{K3S_CONF}/00-multus.conf") == "/host/etc/cni/net.d/00-multus.conf"
    assert mt.to_container("/var/lib/rancher/k3s/data/cni") is None


def test_by_volume_lists_every_mount_of_a_volume() -> None:
    mt = table(
        [mount("cni", "/host/etc/cni/net.d"), mount("bin", "/opt/cni/bin"), mount("cni", "/etc/cni/net.d")],
        [host_path_volume("cni", "/etc/cni/net.d"), host_path_volume("bin", "/opt/cni/bin")],
    )
    assert [m.mount_path for m in mt.by_volume("cni")] == ["/host/etc/cni/net.d", "/etc/cni/net.d"]
    assert mt.by_volume("absent") == []
