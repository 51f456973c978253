"""NetworkAttachmentDefinitions and the pods asking for them (core.attachments, M402-M406)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from kubectl_multus.core.attachments import Request, check_attachments, parse_networks
from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.planner import build_plan
from kubectl_multus.core.snapshot import Snapshot
from tests.unit.test_binaries import nad, snapshot


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("macvlan", [Request("apps", "macvlan")]),
        ("macvlan@net1, other/sriov", [Request("apps", "macvlan", "net1"), Request("other", "sriov")]),
        ("a,,b", [Request("apps", "a"), Request("apps", "b")]),
        ("other / sriov @ net2", [Request("other", "sriov", "net2")]),
        (
            '[{"name": "macvlan", "interface": "net1"}, {"name": "x", "namespace": "other"}]',
            [Request("apps", "macvlan", "net1"), Request("other", "x")],
        ),
    ],
    ids=["name", "interface-and-namespace", "empty-item", "spaces-around-parts", "json"],
)
def test_parse_networks(value: str, expected: list[Request]) -> None:
    assert parse_networks(value, "apps") == (expected, None)


@pytest.mark.parametrize(
    "value", ['[{"name": "x"', '[{"namespace": "x"}]', '["x"]', "a/b/c", "x@", '{"name": "x"}'], ids=str
)
def test_unreadable_networks(value: str) -> None:
    requests, error = parse_networks(value, "apps")
    assert requests == [] and error


def pod(
    networks: str, *, phase: str = "Running", status: list[dict[str, Any]] | None = None, name: str = "app"
) -> dict:
    annotations = {"k8s.v1.cni.cncf.io/networks": networks}
    if status is not None:
        annotations["k8s.v1.cni.cncf.io/network-status"] = json.dumps(status)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps", "annotations": annotations},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": phase},
    }


DEFAULT = {"name": "cbr0", "interface": "eth0", "default": True}
MACVLAN = nad({"type": "macvlan"}, "macvlan", "apps")


def codes(s: Snapshot) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in check_attachments(s):
        out.setdefault(f.code, []).append(f)
    return out


def test_pod_with_its_networks_attached_is_fine() -> None:
    ok = pod("macvlan@net1", status=[DEFAULT, {"name": "apps/macvlan", "interface": "net1"}])
    assert codes(Snapshot("t", others=(MACVLAN,), workloads=(ok,))) == {}


def test_running_pod_without_its_network_skipped_multus() -> None:
    skipped = pod("macvlan", status=[DEFAULT])
    bare = pod("macvlan", name="bare")  # no network-status at all: Multus never saw it
    found = codes(Snapshot("t", others=(MACVLAN,), workloads=(skipped, bare)))["M405"]
    assert [(f.object, f.current, f.nodes) for f in found] == [
        ("Pod apps/app", "apps/macvlan", ("node-1",)),
        ("Pod apps/bare", "apps/macvlan", ("node-1",)),
    ]
    assert found[0].evidence[1] == "k8s.v1.cni.cncf.io/network-status: cbr0"
    assert found[1].evidence[1] == "no k8s.v1.cni.cncf.io/network-status annotation"
    assert "kubectl -n apps delete pod app" in found[0].remediation


def test_status_naming_networks_without_their_namespace_counts_as_attached() -> None:
    """Multus 3.x wrote network-status (and networks-status) names without the namespace."""
    old = pod("macvlan@net1", status=[DEFAULT, {"name": "macvlan", "interface": "net1"}])
    legacy = pod("macvlan", status=None, name="legacy")
    legacy["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks-status"] = json.dumps([DEFAULT, {"name": "macvlan"}])
    assert codes(Snapshot("t", others=(MACVLAN,), workloads=(old, legacy))) == {}
    other = pod("macvlan", status=[DEFAULT, {"name": "other/macvlan"}])  # another namespace's: still lacking
    assert [f.current for f in codes(Snapshot("t", others=(MACVLAN,), workloads=(other,)))["M405"]] == ["apps/macvlan"]


def test_finished_pod_naming_a_network_deleted_since_is_not_judged() -> None:
    """A Job's Succeeded or Failed pod needs no sandbox any more: a network deleted after it ran is
    no problem of that pod; a Pending or Running one that names it is."""
    done = [pod("gone", phase=phase, name=phase.lower(), status=[DEFAULT]) for phase in ("Succeeded", "Failed")]
    assert codes(Snapshot("t", others=(MACVLAN,), workloads=tuple(done))) == {}
    waiting = pod("gone", phase="Pending", name="waiting")
    assert [f.object for f in codes(Snapshot("t", others=(MACVLAN,), workloads=(waiting,)))["M404"]] == [
        "Pod apps/waiting"
    ]


def test_pending_or_host_network_pod_is_not_judged_on_its_status() -> None:
    assert codes(Snapshot("t", others=(MACVLAN,), workloads=(pod("macvlan", phase="Pending"),))) == {}
    host = pod("macvlan,gone")  # nor on a network that does not exist: Multus never looks it up
    host["spec"]["hostNetwork"] = True
    assert codes(Snapshot("t", others=(MACVLAN,), workloads=(host,))) == {}


def test_network_that_does_not_exist_names_the_one_in_another_namespace() -> None:
    elsewhere = nad({"type": "macvlan"}, "sriov", "kube-system")
    found = codes(Snapshot("t", others=(MACVLAN, elsewhere), workloads=(pod("macvlan,sriov", status=[]),)))
    assert [f.current for f in found["M404"]] == ["apps/sriov"]
    assert "kube-system/sriov exists" in found["M404"][0].message
    assert [f.current for f in found["M405"]] == ["apps/macvlan"]  # the missing one is M404's, not M405's


def test_unreadable_annotation() -> None:
    found = codes(Snapshot("t", others=(MACVLAN,), workloads=(pod('[{"name": }]'),)))
    assert list(found) == ["M406"]


def test_pods_are_not_judged_without_any_nad() -> None:
    assert codes(Snapshot("t", workloads=(pod("macvlan"),))) == {}


def test_invalid_and_file_backed_nads() -> None:
    found = codes(Snapshot("t", others=(nad("{oops", "bad"), nad(None, "from-file"), MACVLAN)))
    assert [f.object for f in found["M402"]] == ["NetworkAttachmentDefinition default/bad"]
    assert "not valid JSON" in found["M402"][0].message
    assert [f.object for f in found["M403"]] == ["NetworkAttachmentDefinition default/from-file"]


def test_attachment_findings_reach_the_report_and_the_plan() -> None:
    s = replace(snapshot(MACVLAN, nad("{oops", "bad")), workloads=(pod("macvlan", status=[DEFAULT]),))
    report = diagnose(s)
    assert {"M402", "M405"} <= {f.code for f in report.findings} and not report.healthy
    manual = "\n".join(build_plan(report, s).manual)
    assert "M405" in manual and "M402" in manual
    assert diagnose(snapshot(MACVLAN)).healthy
    unusual = replace(snapshot(MACVLAN, nad(None, "from-file")), workloads=(pod('[{"name": }]'),))
    assert {"M403", "M406"} <= {f.code for f in diagnose(unusual).findings}
