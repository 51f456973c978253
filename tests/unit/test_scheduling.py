"""Where a DaemonSet runs, and which host dirs its settled pods prove exist on a node."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_multus.core.scheduling import runs_on, settled_host_paths, tolerated

CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "n1", "labels": labels or {}}, "spec": {"taints": taints or []}}


def ds(
    *paths: str,
    ready: int = 2,
    desired: int = 2,
    updated: int = 2,
    generation: int = 3,
    observed: int = 3,
    **spec: Any,
) -> dict[str, Any]:
    volumes = [{"name": f"v{i}", "hostPath": {"path": p}} for i, p in enumerate(paths)]
    return {
        "metadata": {"name": "d", "namespace": "kube-system", "generation": generation},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}], "volumes": volumes, **spec}}},
        "status": {
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "updatedNumberScheduled": updated,
            "observedGeneration": observed,
        },
    }


def test_node_selector_and_required_affinity_decide_where_it_runs() -> None:
    linux = node({"kubernetes.io/os": "linux", "zone": "a"})
    assert runs_on(linux, ds(nodeSelector={"kubernetes.io/os": "linux"}))
    assert not runs_on(linux, ds(nodeSelector={"kubernetes.io/os": "windows"}))
    term = {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    assert not runs_on(linux, ds(affinity=affinity))


@pytest.mark.parametrize(
    ("tolerations", "taints", "expected"),
    [
        ([], [], True),
        ([], [CONTROL_PLANE], False),
        ([], [{**CONTROL_PLANE, "effect": "PreferNoSchedule"}], True),  # does not keep a pod away
        ([{"key": CONTROL_PLANE["key"], "operator": "Exists", "effect": "NoSchedule"}], [CONTROL_PLANE], True),
        ([{"key": CONTROL_PLANE["key"], "operator": "Exists", "effect": "NoExecute"}], [CONTROL_PLANE], False),
        ([{"operator": "Exists"}], [CONTROL_PLANE, {"key": "x", "value": "y", "effect": "NoExecute"}], True),
        (
            [{"key": "x", "operator": "Equal", "value": "y"}],
            [{"key": "x", "value": "z", "effect": "NoSchedule"}],
            False,
        ),
        ([{"key": "x", "value": "y"}], [{"key": "x", "value": "y", "effect": "NoSchedule"}], True),
        ([], [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}], True),  # DaemonSets tolerate it
        ([], [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}], False),  # hostNetwork only
    ],
)
def test_taints_and_tolerations(tolerations: list[Any], taints: list[Any], expected: bool) -> None:
    assert tolerated(tolerations, node(taints=taints)) is expected


def test_a_settled_daemonset_running_on_the_node_proves_its_host_paths() -> None:
    assert settled_host_paths([ds("/opt/cni/bin", "/etc/cni/net.d")], node()) == ["/opt/cni/bin", "/etc/cni/net.d"]


@pytest.mark.parametrize(
    "unsettled",
    [
        ds("/opt/cni/bin", ready=1),  # a pod somewhere is not ready: maybe this node's, on a failed mount
        ds("/opt/cni/bin", updated=1),  # rolling out: the new template's paths may not be there yet
        ds("/opt/cni/bin", observed=2),  # the controller has not seen the latest spec
        ds("/opt/cni/bin", desired=0, ready=0, updated=0),  # runs nowhere
        ds("/opt/cni/bin", nodeSelector={"kubernetes.io/os": "windows"}),  # not on this node
    ],
)
def test_a_daemonset_proves_nothing_unless_settled_and_running_here(unsettled: dict[str, Any]) -> None:
    assert settled_host_paths([unsettled], node({"kubernetes.io/os": "linux"})) == []


def test_a_tainted_node_the_daemonset_does_not_tolerate_is_not_proven() -> None:
    assert settled_host_paths([ds("/opt/cni/bin")], node(taints=[CONTROL_PLANE])) == []
    tolerant = ds("/opt/cni/bin", tolerations=[{"operator": "Exists"}])
    assert settled_host_paths([tolerant], node(taints=[CONTROL_PLANE])) == ["/opt/cni/bin"]
