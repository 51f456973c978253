"""NetworkAttachmentDefinitions and the pods that ask for them: broken configs, networks that do
not exist, and pods that started without the networks they asked for.

A pod asks with the annotation `k8s.v1.cni.cncf.io/networks`, either a comma list (`name`,
`ns/name`, `name@iface`) or a JSON list of objects (`{"name", "namespace", "interface"}`); the
namespace defaults to the pod's. Multus reports what it attached in
`k8s.v1.cni.cncf.io/network-status` (a JSON list whose `name` is `ns/name`, the default network
included). A Running pod whose status lacks a requested network was set up without Multus:
usually 00-multus.conf was not the runtime's first config when the pod started.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.binaries import NadConfig, nad_config, nads
from kubectl_multus.core.findings import Finding, Severity
from kubectl_multus.core.snapshot import Obj, Snapshot, meta

NETWORKS = "k8s.v1.cni.cncf.io/networks"
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
LEGACY_STATUS = "k8s.v1.cni.cncf.io/networks-status"  # Multus 3.x wrote this name


@dataclass(frozen=True)
class Request:
    namespace: str
    name: str
    interface: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def _annotations(pod: Obj) -> Mapping[str, Any]:
    return (pod.get("metadata") or {}).get("annotations") or {}


def requests_networks(pod: Obj) -> bool:
    """Does the pod carry a networks annotation (what live keeps of all pods)?"""
    return bool(str(_annotations(pod).get(NETWORKS) or "").strip())


def parse_networks(value: str, namespace: str) -> tuple[list[Request], str | None]:
    """The networks a pod asks for, or the reason the annotation cannot be read."""
    text = value.strip()
    if any(c in text for c in '[{"'):  # what Multus takes for JSON (parsePodNetworkAnnotation)
        try:
            items = json.loads(text)
        except ValueError as exc:
            return [], f"not valid JSON: {exc}"
        if not isinstance(items, list):
            return [], f"JSON but not a list of objects ({type(items).__name__})"
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                return [], f"item {i} is not an object with a name"
            iface = item.get("interface")
            out.append(Request(str(item.get("namespace") or namespace), item["name"], iface if iface else None))
        return out, None
    out = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        ref, _, iface = word.partition("@")
        ns, _, name = ref.rpartition("/")
        ns, name, iface = ns.strip(), name.strip(), iface.strip()  # Multus trims each part
        if not name or "/" in ns or ("@" in word and not iface):
            return [], f"{word!r} is not name, namespace/name or name@interface"
        out.append(Request(ns or namespace, name, iface or None))
    return out, None


def _status_names(pod: Obj) -> set[str] | None:
    ann = _annotations(pod)
    raw = ann.get(NETWORK_STATUS) or ann.get(LEGACY_STATUS)
    if not raw:
        return None
    try:
        items = json.loads(raw)
    except ValueError:
        return None
    return {str(i.get("name")) for i in items if isinstance(i, dict)} if isinstance(items, list) else None


def _attached(ref: str, names: set[str]) -> bool:
    """Multus 4 names a network ns/name in its status; 3.x wrote the bare name."""
    return ref in names or ref.split("/", 1)[1] in names


def _nad_findings(configs: Sequence[NadConfig]) -> list[Finding]:
    out = []
    for c in configs:
        if c.error:
            out.append(
                Finding(
                    "M402",
                    Severity.ERROR,
                    f"NetworkAttachmentDefinition {c.ref} cannot be used: {c.error}",
                    object=f"NetworkAttachmentDefinition {c.ref}",
                    field="spec.config",
                    current=c.error,
                    remediation=f"kubectl edit net-attach-def -n {c.ref.replace('/', ' ', 1)}: make spec.config "
                    'a JSON object with a "type" (or a "plugins" list whose every item has one)',
                )
            )
        elif c.from_file:
            out.append(
                Finding(
                    "M403",
                    Severity.INFO,
                    f"NetworkAttachmentDefinition {c.ref} has no spec.config: Multus reads a config whose name is "
                    f"{c.ref.split('/', 1)[1]} from its confDir on each node, which this tool does not check",
                    object=f"NetworkAttachmentDefinition {c.ref}",
                    field="spec.config",
                    remediation="check by hand that every node's Multus confDir (default /etc/cni/multus/net.d) "
                    "holds that config, and that its plugin binaries are installed",
                )
            )
    return out


def _pod_findings(pod: Obj, known: set[str]) -> list[Finding]:
    ns, name = meta(pod, "namespace", "default"), meta(pod, "name")
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    nodes = (node,) if node else ()
    requests, error = parse_networks(str(_annotations(pod).get(NETWORKS) or ""), ns)
    where = f"Pod {ns}/{name}"
    field = f"annotation {NETWORKS}"
    if error:
        return [
            Finding(
                "M406",
                Severity.ERROR,
                f"pod {ns}/{name} asks for networks Multus cannot parse: {error}",
                nodes=nodes,
                object=where,
                field=field,
                current=str(_annotations(pod).get(NETWORKS)),
                remediation='write a comma list (name, namespace/name, name@interface) or a JSON list of {"name": ..., '
                '"namespace": ..., "interface": ...} objects',
            )
        ]
    out = []
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return []  # finished: it needs no sandbox, so a network deleted since it ran harms nothing
    if (pod.get("spec") or {}).get("hostNetwork"):
        return []  # no CNI call at all: the networks it names are never looked up
    missing = [r for r in requests if r.ref not in known]
    for r in dict.fromkeys(missing):
        elsewhere = sorted(k for k in known if k.split("/", 1)[1] == r.name)
        hint = f"; {', '.join(elsewhere)} exists: name its namespace in the annotation" if elsewhere else ""
        out.append(
            Finding(
                "M404",
                Severity.ERROR,
                f"pod {ns}/{name} asks for network {r.ref}, but there is no NetworkAttachmentDefinition {r.ref}: "
                f"Multus cannot set up its sandbox{hint}",
                nodes=nodes,
                object=where,
                field=field,
                current=r.ref,
                remediation=f"create NetworkAttachmentDefinition {r.name} in namespace {r.namespace}, or fix the annotation",
            )
        )
    attached = _status_names(pod)
    wanted = [r.ref for r in requests if r.ref in known]
    lacking = [w for w in dict.fromkeys(wanted) if attached is None or not _attached(w, attached)]
    if phase == "Running" and lacking:
        status = (
            f"no {NETWORK_STATUS} annotation"
            if attached is None
            else f"{NETWORK_STATUS}: {', '.join(sorted(attached)) or 'empty'}"
        )
        on = f" on node {node}" if node else ""
        out.append(
            Finding(
                "M405",
                Severity.ERROR,
                f"pod {ns}/{name} runs without network(s) {', '.join(lacking)} it asks for: its sandbox was set up "
                "without Multus (usually because 00-multus.conf was not the runtime's first config when it started)",
                nodes=nodes,
                object=where,
                field=f"annotation {NETWORK_STATUS}",
                current=", ".join(lacking),
                evidence=(f"{NETWORKS}: {_annotations(pod).get(NETWORKS)}", status),
                remediation=f"once Multus runs{on} with 00-multus.conf first in the conf dir, recreate the pod "
                f"(kubectl -n {ns} delete pod {name}; its controller makes a new one)",
            )
        )
    return out


def check_attachments(snapshot: Snapshot) -> list[Finding]:
    """Cluster-wide NetworkAttachmentDefinition and workload pod findings. Pods are judged only when
    the snapshot holds NetworkAttachmentDefinitions: without any, a missing one cannot be told from
    one that was not read (and live reads pods only when there are some)."""
    defs = nads(snapshot.others)
    findings = _nad_findings([nad_config(n) for n in defs])
    if defs:
        known = {f"{meta(n, 'namespace', 'default')}/{meta(n, 'name')}" for n in defs}
        for pod in snapshot.workloads:
            if requests_networks(pod):
                findings.extend(_pod_findings(pod, known))
    return findings
