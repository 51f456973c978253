"""The primary CNI Multus delegates to, as the API shows it: which DaemonSet runs it, whether it is
up, and (Cilium) whether it claims the conf dir for itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from kubectl_multus.core.findings import Finding, Severity
from kubectl_multus.core.install import pod_spec
from kubectl_multus.core.snapshot import Obj, Snapshot, configmap_text, meta

# DaemonSet names of the usual installs (manifests, charts, RKE2/k3s, operators).
KNOWN_NAMES: Mapping[str, str] = {
    "rke2-canal": "canal",
    "canal": "canal",
    "calico-node": "calico",
    "rke2-calico": "calico",
    "kube-flannel-ds": "flannel",
    "kube-flannel": "flannel",
    "kube-flannel-ds-amd64": "flannel",
    "rke2-flannel": "flannel",
    "cilium": "cilium",
    "rke2-cilium": "cilium",
    "ovnkube-node": "ovn-kubernetes",
    "weave-net": "weave",
    "antrea-agent": "antrea",
    "kube-router": "kube-router",
    "kube-ovn-cni": "kube-ovn",
    "aws-node": "aws-vpc-cni",
}
# Last segment of an image repository -> the CNI whose agent it is (cilium-envoy or
# cilium-operator images are not the agent and are not listed).
KNOWN_IMAGES: Mapping[str, str] = {
    "cilium": "cilium",
    "flannel": "flannel",
    "hardened-flannel": "flannel",
    "node": "calico",  # calico/node, only under a calico repository (see _image_kind)
    "hardened-calico": "calico",
    "weave-kube": "weave",
    "antrea-agent": "antrea",
    "antrea-ubuntu": "antrea",
    "kube-router": "kube-router",
    "ovn-kubernetes": "ovn-kubernetes",
    "ovn-daemonset-ubuntu": "ovn-kubernetes",
    "ovn-daemonset-fedora": "ovn-kubernetes",
    "kube-ovn": "kube-ovn",
    "amazon-k8s-cni": "aws-vpc-cni",
}
CILIUM_CONFIG = "cilium-config"  # the agent's ConfigMap, in Cilium's namespace
CILIUM_EXCLUSIVE = "cni-exclusive"  # key; chart value cni.exclusive, default true


@dataclass(frozen=True)
class PrimaryDaemonSet:
    kind: str  # canal | calico | flannel | cilium | ...
    ds: Obj

    @property
    def ref(self) -> str:
        return f"DaemonSet {meta(self.ds, 'namespace', 'default')}/{meta(self.ds, 'name')}"

    @property
    def namespace(self) -> str:
        return meta(self.ds, "namespace", "default")

    def counts(self) -> tuple[int, int] | None:
        """(ready, desired) from the DaemonSet's status; None when the status is not there."""
        status = self.ds.get("status") or {}
        if "desiredNumberScheduled" not in status:
            return None
        return int(status.get("numberReady") or 0), int(status.get("desiredNumberScheduled") or 0)


def _image_kind(image: str) -> str | None:
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:  # a tag, not a registry port
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    parts = repo.split("/")
    kind = KNOWN_IMAGES.get(parts[-1])
    if parts[-1] == "node" and (len(parts) < 2 or "calico" not in parts[-2]):
        return None
    return kind


def primary_kind(ds: Obj) -> str | None:
    """Which primary CNI a DaemonSet runs, by its name, else by its containers' images
    (canal is calico-node and flannel in one pod)."""
    name = meta(ds, "name")
    if name in KNOWN_NAMES:
        return KNOWN_NAMES[name]
    kinds = {_image_kind(str(c.get("image") or "")) for c in pod_spec(ds).get("containers") or []} - {None}
    if {"calico", "flannel"} <= kinds:
        return "canal"
    return sorted(k for k in kinds if k)[0] if kinds else None


def primary_daemonsets(snapshot: Snapshot, multus: Iterable[Obj] = ()) -> list[PrimaryDaemonSet]:
    skip = {(meta(d, "namespace"), meta(d, "name")) for d in multus}
    found = []
    for ds in snapshot.daemonsets:
        if (meta(ds, "namespace"), meta(ds, "name")) in skip:
            continue
        kind = primary_kind(ds)
        if kind:
            found.append(PrimaryDaemonSet(kind, ds))
    return found


def cilium_exclusive(snapshot: Snapshot, cilium: PrimaryDaemonSet) -> tuple[str | None, str]:
    """(value of cni-exclusive, where it was read) from ConfigMap cilium-config in Cilium's
    namespace; (None, why) when it is not in the snapshot. Absent key: the chart default, true."""
    cm = snapshot.configmap(cilium.namespace, CILIUM_CONFIG)
    where = f"ConfigMap {cilium.namespace}/{CILIUM_CONFIG}"
    if cm is None:
        return None, f"{where} is not in the snapshot"
    text, _binary = configmap_text(cm, CILIUM_EXCLUSIVE)
    return (text.strip().lower() if text is not None else "true (unset: the chart default)"), where


def check_primary_down(
    snapshot: Snapshot,
    multus: Iterable[Obj],
    node: Obj,
    runs_on: Callable[[Obj, Obj], bool],
    why: str,
) -> Finding:
    """Multus has no primary config to delegate to (`why`): it is the victim. Say which primary
    CNI is down, from its DaemonSet's status, or, when none is visible, what to check by hand."""
    name = meta(node, "name")
    primaries = primary_daemonsets(snapshot, multus)
    here = [p for p in primaries if runs_on(node, p.ds)]
    if not primaries:
        return Finding(
            "M209",
            Severity.WARNING,
            f"no primary CNI config for Multus to delegate to ({why}), and no DaemonSet of a known primary CNI "
            "(canal, calico, flannel, cilium, ovn-kubernetes, weave, antrea, kube-router, ...) is in the snapshot: "
            "check by hand whether the primary CNI runs on this node",
            object=f"Node {name}",
            field="primary CNI",
            evidence=(why,),
            remediation=f"kubectl get pods -A -o wide --field-selector spec.nodeName={name} (the primary CNI's pods, "
            "usually in kube-system); fix the primary CNI first: Multus recovers once its config appears",
        )
    down: list[str] = []
    unknown: list[str] = []
    failing: list[PrimaryDaemonSet] = []
    for p in here:
        counts = p.counts()
        if counts is None:
            unknown.append(f"{p.ref} ({p.kind}): no status in the snapshot")
        elif counts[0] < counts[1]:
            down.append(f"{p.ref} ({p.kind}): {counts[0]} of {counts[1]} pods ready")
            failing.append(p)
    if failing:
        kinds = ", ".join(sorted({p.kind for p in failing}))
        return Finding(
            "M208",
            Severity.ERROR,
            f"the primary CNI ({kinds}) is not ready, so it has written no config for Multus to delegate to: "
            "Multus is a victim, not the cause",
            object=failing[0].ref,
            field="status.numberReady",
            evidence=(why, *down, "the DaemonSet status counts pods, not nodes: check which node's pod is down"),
            remediation=f"fix the primary CNI first (kubectl -n {failing[0].namespace} get pods -o wide "
            f"--field-selector spec.nodeName={name}; kubectl logs on the failing pod); "
            "Multus recovers once its config appears",
        )
    if not here:
        refs = ", ".join(p.ref for p in primaries)
        detail = f"{refs} does not run on node {name} (node selector or affinity)"
    elif unknown:
        detail = "; ".join(unknown)
    else:
        detail = ", ".join(f"{p.ref} reports every pod ready" for p in here)
    return Finding(
        "M209",
        Severity.WARNING,
        f"no primary CNI config for Multus to delegate to ({why}); {detail}: check by hand why the primary CNI "
        "wrote no config on this node",
        object=f"Node {name}",
        field="primary CNI",
        evidence=(why, detail),
        remediation=f"kubectl get pods -A -o wide --field-selector spec.nodeName={name}: the primary CNI's pod on "
        "this node and its logs; if it runs, compare the directory it writes to with Multus's autoconfig dir",
    )
