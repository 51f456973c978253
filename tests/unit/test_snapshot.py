"""What is known of a node's filesystem (kubectl_multus.core.snapshot.NodeFiles)."""

from __future__ import annotations

import pytest

from kubectl_multus.core.snapshot import Entry, NodeFiles

DATA = "/var/lib/rancher/k3s/data"
K3S_CONF = "/var/lib/rancher/k3s/agent/etc/cni/net.d"

# An old k3s node: data/current is a relative link to the release dir, /etc/cni/net.d an absolute
# link to k3s's conf dir; the bin dir is only implied by the files below it.
ENTRIES = {
    "/etc/cni": Entry("dir"),
    "/etc/cni/net.d": Entry("link", target=K3S_CONF),
    f"{K3S_CONF}/10-flannel.conflist": Entry("file", '{"name": "cbr0"}'),
    f"{K3S_CONF}/00-multus.conf": Entry("file", None),
    f"{K3S_CONF}/multus.d": Entry("dir"),
    f"{DATA}/current": Entry("link", target="3ccf8a82"),
    f"{DATA}/previous": Entry("link", target="../data/0a1b2c3d"),
    f"{DATA}/3ccf8a82/bin/flannel": Entry("file", None),
    f"{DATA}/3ccf8a82/bin/host-local": Entry("file", None),
    "/opt/cni/bin": Entry("dir"),
    "/run/dangling": Entry("link", target="/run/absent"),
}

ALL = NodeFiles(ENTRIES)
SOME = NodeFiles(ENTRIES, roots=("/etc/cni", "/var/lib/rancher/k3s/"))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(f"{DATA}/current/bin/flannel", f"{DATA}/3ccf8a82/bin/flannel", id="relative-link"),
        pytest.param(f"{DATA}/previous/bin", f"{DATA}/0a1b2c3d/bin", id="relative-link-with-dot-dot"),
        pytest.param("/etc/cni/net.d/10-flannel.conflist", f"{K3S_CONF}/10-flannel.conflist", id="absolute-link"),
        pytest.param("/etc/cni/net.d", K3S_CONF, id="link-itself"),
        pytest.param("/opt/cni/bin/", "/opt/cni/bin", id="no-link-just-normalised"),
    ],
)
def test_realpath_follows_links(path: str, expected: str) -> None:
    assert ALL.realpath(path) == expected


def test_link_loop_terminates_and_leads_nowhere() -> None:
    loop = NodeFiles({"/a": Entry("link", target="/b"), "/b": Entry("link", target="/a")})
    assert loop.exists("/a/x") is False
    assert loop.read("/a/x") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(f"{K3S_CONF}/10-flannel.conflist", True, id="file-entry"),
        pytest.param(f"{K3S_CONF}/multus.d", True, id="dir-entry"),
        pytest.param(f"{DATA}/3ccf8a82/bin", True, id="dir-implied-by-children"),
        pytest.param("/var/lib", True, id="ancestor-implied-by-children"),
        pytest.param("/", True, id="root-implied"),
        pytest.param(f"{DATA}/current/bin/flannel", True, id="through-relative-link"),
        pytest.param("/etc/cni/net.d/10-flannel.conflist", True, id="through-absolute-link"),
        pytest.param(f"{DATA}/current/bin/bridge", False, id="absent-file-through-link"),
        pytest.param(f"{DATA}/cni", False, id="absent-dir"),
        pytest.param(f"{DATA}/3ccf8a8", False, id="prefix-of-an-entry-is-not-an-entry"),
        pytest.param("/run/dangling", False, id="dangling-link"),
    ],
)
def test_exists_with_every_path_captured(path: str, expected: bool) -> None:
    assert ALL.exists(path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(f"{DATA}/cni", False, id="absent-inside-a-root"),
        pytest.param("/etc/cni/net.d/99-absent.conf", False, id="absent-through-link-into-a-root"),
        pytest.param(f"{DATA}/current/bin/flannel", True, id="present-inside-a-root"),
        pytest.param("/opt/cni/bin", True, id="entry-outside-roots-still-exists"),
        pytest.param("/var/lib", True, id="ancestor-of-a-root-implied-by-children"),
        pytest.param("/opt/cni/bin/multus", None, id="absent-outside-roots-is-unknown"),
        pytest.param("/etc/cni2", None, id="prefix-sibling-of-a-root-is-unknown"),
        pytest.param("/run/dangling", None, id="link-leading-outside-roots-is-unknown"),
    ],
)
def test_exists_with_roots(path: str, expected: bool | None) -> None:
    assert SOME.exists(path) is expected


@pytest.mark.parametrize(
    ("files", "path", "expected"),
    [
        pytest.param(ALL, f"{K3S_CONF}/multus.d", True, id="dir-entry"),
        pytest.param(ALL, "/etc/cni/net.d", True, id="link-to-implied-dir"),
        pytest.param(ALL, f"{DATA}/current", True, id="relative-link-to-implied-dir"),
        pytest.param(ALL, f"{DATA}/3ccf8a82/bin", True, id="implied-dir"),
        pytest.param(ALL, f"{K3S_CONF}/10-flannel.conflist", False, id="file"),
        pytest.param(ALL, f"{DATA}/current/bin/flannel", False, id="file-through-link"),
        pytest.param(ALL, f"{DATA}/cni", False, id="absent"),
        pytest.param(SOME, "/opt/cni/bin/multus", None, id="unknown-outside-roots"),
    ],
)
def test_is_dir(files: NodeFiles, path: str, expected: bool | None) -> None:
    assert files.is_dir(path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(f"{K3S_CONF}/10-flannel.conflist", '{"name": "cbr0"}', id="file-content"),
        pytest.param("/etc/cni/net.d/10-flannel.conflist", '{"name": "cbr0"}', id="file-content-through-link"),
        pytest.param(f"{K3S_CONF}/00-multus.conf", None, id="file-kept-without-content"),
        pytest.param(f"{K3S_CONF}/multus.d", None, id="dir"),
        pytest.param(f"{DATA}/3ccf8a82/bin", None, id="implied-dir"),
        pytest.param(f"{K3S_CONF}/absent.conf", None, id="absent"),
    ],
)
def test_read(path: str, expected: str | None) -> None:
    assert ALL.read(path) == expected


@pytest.mark.parametrize(
    ("files", "path", "expected"),
    [
        pytest.param(ALL, K3S_CONF, ["00-multus.conf", "10-flannel.conflist", "multus.d"], id="sorted-names"),
        pytest.param(ALL, "/etc/cni/net.d/", ["00-multus.conf", "10-flannel.conflist", "multus.d"], id="via-link"),
        pytest.param(ALL, f"{DATA}/current/bin", ["flannel", "host-local"], id="via-relative-link"),
        pytest.param(ALL, DATA, ["3ccf8a82", "current", "previous"], id="implied-child-listed-once"),
        pytest.param(ALL, "/etc", ["cni"], id="direct-children-only"),
        pytest.param(ALL, "/opt/cni/bin", [], id="empty-dir"),
        pytest.param(ALL, f"{DATA}/cni", [], id="absent-dir-is-empty"),
        pytest.param(SOME, "/opt/cni/bin/multus.d", None, id="unknown-outside-roots"),
    ],
)
def test_listdir(files: NodeFiles, path: str, expected: list[str] | None) -> None:
    assert files.listdir(path) == expected


def test_listdir_of_root_lists_top_level_names() -> None:
    assert ALL.listdir("/") == ["etc", "opt", "run", "var"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/etc/cni", True, id="root-itself"),
        pytest.param("/var/lib/rancher/k3s/data/cni", True, id="below-root-with-trailing-slash"),
        pytest.param("/var/lib/rancher", False, id="parent-of-root"),
        pytest.param("/etc/cni2", False, id="prefix-sibling-of-root"),
    ],
)
def test_known_means_below_a_captured_root(path: str, expected: bool) -> None:
    assert SOME.known(path) is expected
