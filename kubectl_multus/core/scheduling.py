"""Where a DaemonSet's pods run, from the objects alone: node labels, affinity and taints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubectl_multus.core.install import pod_spec
from kubectl_multus.core.snapshot import Obj

# Taints the DaemonSet controller tolerates on every DaemonSet pod (node lifecycle conditions).
# network-unavailable is left out: it is tolerated for hostNetwork pods only.
DAEMONSET_TOLERATED = frozenset(
    f"node.kubernetes.io/{k}" for k in ("not-ready", "unreachable", "disk-pressure", "memory-pressure",
                                        "pid-pressure", "unschedulable")
)  # fmt: skip


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def runs_on(node: Obj, ds: Obj) -> bool:
    """Would the DaemonSet run on this node: nodeSelector, and required node affinity by labels."""
    spec = pod_spec(ds)
    selector: Mapping[str, str] = spec.get("nodeSelector") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not all(labels.get(k) == v for k, v in selector.items()):
        return False
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    terms = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    return not terms or any(_term_matches(t, labels) for t in terms)


def _tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration.get("key") == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(tolerations: Sequence[Mapping[str, Any]], node: Obj) -> bool:
    """Whether a DaemonSet pod with these tolerations may stay on the node: every NoSchedule and
    NoExecute taint is tolerated (PreferNoSchedule does not keep a pod away)."""
    taints = (node.get("spec") or {}).get("taints") or []
    return all(
        t.get("effect") == "PreferNoSchedule"
        or t.get("key") in DAEMONSET_TOLERATED
        or any(_tolerates(tol, t) for tol in tolerations)
        for t in taints
    )


def settled_host_paths(daemonsets: Iterable[Obj], node: Obj) -> list[str]:
    """hostPaths of DaemonSets whose current pods are ready on every node they target, this node
    among them: the kubelet has set them up here, so they exist (a whereabouts DaemonSet's
    /opt/cni/bin on k3s, where no Multus volume shows that /opt is there). A DaemonSet still
    rolling out, or short of ready pods, proves nothing."""
    found: list[str] = []
    for ds in daemonsets:
        status, spec = ds.get("status") or {}, pod_spec(ds)
        desired = int(status.get("desiredNumberScheduled") or 0)
        settled = (
            desired > 0
            and int(status.get("numberReady") or 0) >= desired
            and int(status.get("updatedNumberScheduled") or 0) >= desired
            and status.get("observedGeneration") == (ds.get("metadata") or {}).get("generation")
        )
        if settled and runs_on(node, ds) and tolerated(spec.get("tolerations") or [], node):
            found += [
                str(v["hostPath"]["path"]) for v in spec.get("volumes") or [] if (v.get("hostPath") or {}).get("path")
            ]
    return found
