"""Writes into host directories that the node refused: on SELinux-enforcing nodes an unprivileged
container (label container_t) may not write to host dirs that lack the container_file_t label,
such as /opt/cni/bin. A privileged container runs as spc_t and may.

RKE2's `cni-plugins` init container (rancher/hardened-cni-plugins) checks the bin dir first, logs
`/host/opt/cni/bin is non-writeable, skipping` and exits 0: the pod runs, the reference plugins
(macvlan, ipvlan…) are missing and every pod that asks for them fails later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.install import Install
from kubectl_multus.core.paths import is_under
from kubectl_multus.core.snapshot import Obj, Snapshot, meta

NON_WRITEABLE = re.compile(r"(?P<path>/\S+) is non-writeable, skipping")
# Go's os errors and shell tools: "open /host/opt/cni/bin/x: permission denied", "cp: can't create '/x': Permission denied"
DENIED = re.compile(r"[Pp]ermission denied")
PATH = re.compile(r"/[^\s:'\"]+")


@dataclass(frozen=True)
class Denial:
    node: str
    container: str
    path: str
    line: str
    skipped: bool  # the non-writeable skip (decided), or a bare permission denied (to check by hand)


def _containers(inst: Install) -> list[tuple[str, Mapping[str, Any]]]:
    spec = inst.pod_spec
    return [("container", c) for c in spec.get("containers") or []] + [
        ("initContainer", c) for c in spec.get("initContainers") or []
    ]


def _confined(c: Mapping[str, Any], pod_spec: Mapping[str, Any]) -> bool:
    """Does SELinux confine this container (not privileged, no label of its own)?"""
    sc = c.get("securityContext") or {}
    if sc.get("privileged") is True:
        return False
    return not (sc.get("seLinuxOptions") or (pod_spec.get("securityContext") or {}).get("seLinuxOptions"))


def may_be_refused(c: Mapping[str, Any], pod_spec: Mapping[str, Any]) -> bool:
    """Could SELinux have refused this container a write to the host? Then its log is worth reading
    even after it exited 0 (RKE2's cni-plugins warns and exits 0)."""
    volumes = {v.get("name"): v for v in pod_spec.get("volumes") or []}
    writable = any(
        "hostPath" in (volumes.get(m.get("name")) or {}) and not m.get("readOnly") for m in c.get("volumeMounts") or []
    )
    return writable and _confined(c, pod_spec)


def _host_mount(c: Mapping[str, Any], volumes: Mapping[str, Any], path: str) -> bool:
    for m in c.get("volumeMounts") or []:
        vol = volumes.get(m.get("name")) or {}
        if "hostPath" in vol and m.get("mountPath") and is_under(path, str(m["mountPath"])):
            return True
    return False


def denials(snapshot: Snapshot, inst: Install, node: str, pod: Obj | None) -> list[Denial]:
    if pod is None:
        return []
    volumes = {v.get("name"): v for v in inst.pod_spec.get("volumes") or []}
    out: list[Denial] = []
    for _, c in _containers(inst):
        name = str(c.get("name"))
        if not _confined(c, inst.pod_spec):
            continue
        for previous in (False, True):
            text = snapshot.log(inst.namespace, meta(pod, "name"), name, previous) or ""
            for line in text.splitlines():
                m = NON_WRITEABLE.search(line)
                if m and _host_mount(c, volumes, m.group("path")):
                    out.append(Denial(node, name, m.group("path"), line.strip(), True))
                    continue
                if not DENIED.search(line):
                    continue
                path = next((p for p in PATH.findall(line) if _host_mount(c, volumes, p)), None)
                if path:
                    out.append(Denial(node, name, path, line.strip(), False))
    return out


def check_host_writes(inst: Install, found: list[Denial]) -> list[Finding]:
    """M305 (the init container skipped its job: make it privileged) and M306 (a permission
    denied on a host mount: what to check on the node, and the two ways out)."""
    kinds = {str(c.get("name")): kind for kind, c in _containers(inst)}
    ds = Target("DaemonSet", inst.namespace, inst.name)
    out: list[Finding] = []
    for container in sorted({d.container for d in found}):
        mine = [d for d in found if d.container == container]
        nodes = sorted({d.node for d in mine})
        kind = kinds.get(container, "container")
        who = f"{'init ' if kind == 'initContainer' else ''}container {container}"
        evidence = tuple(dict.fromkeys(f"log ({container}) on {d.node}: {d.line}" for d in mine))
        skipped = [d for d in mine if d.skipped]
        if skipped:
            out.append(
                Finding(
                    "M305",
                    Severity.ERROR,
                    f"{who} found {skipped[0].path} non-writeable and skipped installing into it (on "
                    f"{', '.join(nodes)}): it is not privileged, and on SELinux-enforcing nodes an unprivileged "
                    "container may not write to the host's CNI bin dir; the plugins it should install are missing",
                    object=inst.ref,
                    field=f"container {container} securityContext.privileged",
                    expected="true",
                    evidence=evidence,
                    remediation=f"make {who} privileged (it then runs as spc_t); check with `ausearch -m avc -ts recent` "
                    "on the node",
                    changes=(Change(ds, f"ds.{kind}.{container}.securityContext.privileged", "true", None, container),),
                )
            )
            continue
        out.append(
            Finding(
                "M306",
                Severity.WARNING,
                f"{who} was denied access to {mine[0].path}, a path it mounts from the host, and it runs "
                "unprivileged without an SELinux label of its own: SELinux may be refusing it",
                nodes=(),
                object=inst.ref,
                field=f"container {container} securityContext",
                evidence=evidence,
                remediation=f"on {', '.join(nodes)}: `ausearch -m avc -ts recent` (or `journalctl -t setroubleshoot`); "
                "if it shows a denial for this container, set securityContext.privileged: true or "
                "seLinuxOptions: {type: spc_t} on it; if not, check the file modes of the host path",
            )
        )
    return out
