"""The Multus pod on a node: is it running, and what its logs say went wrong.

The thin entrypoint exits 0 after a startup error, so the pod crash-loops with reason
Completed and the message lives only in `kubectl logs --previous`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.findings import Finding, Severity
from kubectl_multus.core.install import Install
from kubectl_multus.core.snapshot import Obj, Snapshot, meta


@dataclass(frozen=True)
class LogPattern:
    regex: re.Pattern[str]
    mode: str  # the mode whose code prints it: thin | thick | any
    setting: dict[str, str]  # mode -> setting at fault


def _p(regex: str, mode: str, thin: str = "", thick: str = "") -> LogPattern:
    setting = {k: v for k, v in (("thin", thin), ("thick", thick)) if v}
    return LogPattern(re.compile(regex), mode, setting)


# Messages printed by Multus 4.x (cmd/thin_entrypoint, cmd/multus-daemon, pkg/server), verbatim.
LOG_PATTERNS: tuple[LogPattern, ...] = (
    _p(r"cni-conf-dir is not found: (?P<detail>.+)", "thin", thin="--cni-conf-dir"),
    _p(r"cni-bin-dir is not found: (?P<detail>.+)", "thin", thin="--cni-bin-dir"),
    _p(r"multus-bin-file is not found: (?P<detail>.+)", "thin", thin="--multus-bin-file"),
    _p(r"multus-conf-file is not found: (?P<detail>.+)", "thin", thin="--multus-conf-file"),
    _p(r'cannot find valid master CNI config in "(?P<detail>[^"]+)"', "thin", thin="--multus-autoconfig-dir"),
    _p(r'cannot find master CNI config in "(?P<detail>[^"]+)"', "thin", thin="--multus-autoconfig-dir"),
    _p(r"Multus cni version is (?P<detail>.+) while master plugin cni version is", "thin", thin="--cni-version"),
    _p(r"failed to create multus kubeconfig: (?P<detail>.+)", "thin", thin="--cni-conf-dir"),
    _p(r"failed at multus copy: (?P<detail>.+)", "thin", thin="--cni-bin-dir"),
    _p(r"failed to load the CNI server configuration: (?P<detail>.+)", "thick", thick="-config"),
    _p(r"failed to load the multus configuration: (?P<detail>.+)", "thick", thick="-config"),
    _p(
        r"still waiting for readinessindicatorfile @ (?P<detail>\S+?)\.? pollimmediate",
        "thick",
        thick="readinessindicatorfile",
    ),
    _p(
        r"failed to find the primary CNI plugin: .*error when listing the CNI plugin configurations: (?P<detail>.+)",
        "thick",
        thick="multusAutoconfigDir",
    ),
    _p(
        r"failed to find the primary CNI plugin: .*could not find a plugin configuration in (?P<detail>\S+)",
        "thick",
        thick="multusAutoconfigDir",
    ),
    _p(r"failed to persist the multus configuration: (?P<detail>.+)", "thick", thick="cniConfigDir"),
    _p(
        r"(failed to create pod info socket directory|failed to prepare the cni-socket)(?P<detail>.*)",
        "thick",
        thick="socketDir",
    ),
    _p(r'failed to find plugin "(?P<detail>[^"]+)" in path', "any", thin="--cni-bin-dir", thick="binDir"),
    _p(
        r"GetK8sClient: failed to get context for the kubeconfig (?P<detail>.+)",
        "thin",
        thin="--multus-kubeconfig-file-host",
    ),
)


# What Multus prints once it is past its startup checks (verbatim: thin_entrypoint in auto mode and
# with a given conf file, the legacy entrypoint.sh, multus-daemon at verbose level). A startup error
# in the previous run's log is history once the current, ready run printed one of these (the usual
# case: Multus started before the primary CNI at boot, exited, and the restart found its config).
PAST_STARTUP = re.compile(
    r"multus config file is created\.|multus config file \S+ is copied\.|Entering watch loop|Entering sleep"
    r"|Generated MultusCNI config: "
)


@dataclass(frozen=True)
class LogHit:
    line: str
    container: str
    previous: bool
    mode: str
    setting: str  # for the install's mode ("" when the message belongs to the other mode)
    detail: str


def all_pods_of(snapshot: Snapshot, inst: Install) -> list[tuple[str, Obj]]:
    """Every pod of the install with its node, an evicted one beside its replacement included."""
    selector: Mapping[str, str] = ((inst.ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    out: list[tuple[str, Obj]] = []
    for pod in snapshot.pods:
        if meta(pod, "namespace", "default") != inst.namespace:
            continue
        owners = (pod.get("metadata") or {}).get("ownerReferences") or []
        labels = (pod.get("metadata") or {}).get("labels") or {}
        owned = any(o.get("kind") == "DaemonSet" and o.get("name") == inst.name for o in owners)
        if owned or (not owners and selector and all(labels.get(k) == v for k, v in selector.items())):
            node = str((pod.get("spec") or {}).get("nodeName") or "")
            if node:
                out.append((node, pod))
    return out


def pods_of(snapshot: Snapshot, inst: Install) -> dict[str, Obj]:
    """The install's pod on each node: the DaemonSet replaces a pod that failed (evicted), and
    the replacement is the one that serves the node."""
    out: dict[str, Obj] = {}
    for node, pod in all_pods_of(snapshot, inst):
        done = str((pod.get("status") or {}).get("phase")) in ("Failed", "Succeeded")
        if node not in out or not done:
            out[node] = pod
    return out


def _status(pod: Obj, container: str) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == container), {})


def pod_summary(pod: Obj | None, container: str) -> dict[str, Any]:
    if pod is None:
        return {"name": None, "phase": "Missing", "ready": False, "restarts": 0, "state": "no pod"}
    st = _status(pod, container)
    waiting = (st.get("state") or {}).get("waiting") or {}
    terminated = (st.get("lastState") or {}).get("terminated") or {}
    phase = str((pod.get("status") or {}).get("phase") or "Unknown")
    # A pod the kubelet gave up on says why at pod level (Evicted, DeadlineExceeded, NodeLost…).
    why = (pod.get("status") or {}).get("reason")
    state = waiting.get("reason") or ("Running" if (st.get("state") or {}).get("running") else why or phase)
    return {
        "name": meta(pod, "name"),
        "phase": phase,
        "ready": bool(st.get("ready")),
        "restarts": int(st.get("restartCount") or 0),
        "state": str(state),
        "lastExit": terminated.get("exitCode"),
        "lastReason": terminated.get("reason"),
    }


def check_pod(inst: Install, node: str, pod: Obj | None, has_pods: bool) -> list[Finding]:
    if not has_pods:
        return []  # the snapshot holds no pods at all: nothing to judge
    s = pod_summary(pod, inst.container_name)
    if pod is None:
        return [
            Finding(
                "M201",
                Severity.ERROR,
                f"no Multus pod runs on node {node}",
                nodes=(node,),
                object=inst.ref,
                remediation=f"kubectl -n {inst.namespace} describe ds {inst.name} (nodeSelector, tolerations, events)",
            )
        ]
    found: list[Finding] = []
    if s["lastReason"] == "OOMKilled" or s["state"] == "OOMKilled":
        limit = ((inst.container.get("resources") or {}).get("limits") or {}).get("memory")
        found.append(
            Finding(
                "M302",
                Severity.ERROR,
                f"the kernel killed {inst.container_name} for using more memory than its limit ({limit or 'no limit'}): "
                "while it restarts the shim cannot reach the daemon and pod sandboxes fail",
                nodes=(node,),
                object=inst.ref,
                field=f"container {inst.container_name} resources.limits.memory",
                current=str(limit) if limit else None,
                evidence=(f"pod {s['name']}: last exit {s['lastExit']} (OOMKilled), {s['restarts']} restarts",),
                remediation="raise the memory limit (upstream's 50Mi is known to be too low; 200Mi is the proposal of multus-cni PR 1383) and keep requests equal to limits for Guaranteed QoS",
            )
        )
    if s["phase"] == "Running" and s["ready"]:
        return found
    evidence = [f"pod {s['name']}: {s['state']}, phase {s['phase']}, {s['restarts']} restarts"]
    if s["lastExit"] is not None:
        evidence.append(f"last exit code {s['lastExit']} ({s['lastReason']})")
        if s["lastExit"] == 0 and inst.mode == "thin":
            evidence.append("the thin entrypoint exits 0 after a startup error: the message is only in the logs")
    found.append(
        Finding(
            "M201",
            Severity.ERROR,
            f"the Multus pod on node {node} is not running and ready ({s['state']})",
            nodes=(node,),
            object=f"Pod {inst.namespace}/{s['name']}",
            evidence=tuple(evidence),
            remediation=f"kubectl -n {inst.namespace} logs {s['name']} -c {inst.container_name} --previous",
        )
    )
    return found


def log_hits(snapshot: Snapshot, inst: Install, pod: Obj | None) -> list[LogHit]:
    if pod is None:
        return []
    name = meta(pod, "name")
    containers = [inst.container_name] + [n for n, _ in inst.init_mounts]
    summary = pod_summary(pod, inst.container_name)
    recovered = bool(
        summary["phase"] == "Running"
        and summary["ready"]
        and PAST_STARTUP.search(snapshot.log(inst.namespace, name, inst.container_name, False) or "")
    )
    hits: list[LogHit] = []
    seen: set[str] = set()
    for container in containers:
        for previous in (True, False):
            text = snapshot.log(inst.namespace, name, container, previous)
            for line in (text or "").splitlines():
                for pat in LOG_PATTERNS:
                    if recovered and previous and container == inst.container_name and pat.mode != "any":
                        continue  # a startup error of a run the current one got past
                    m = pat.regex.search(line)
                    if m and line not in seen:
                        seen.add(line)
                        hits.append(
                            LogHit(
                                line.strip(),
                                container,
                                previous,
                                pat.mode,
                                pat.setting.get(inst.mode, ""),
                                m.group("detail").strip(),
                            )
                        )
    return hits


def qos(containers: Sequence[Mapping[str, Any]]) -> str:
    """The QoS class Kubernetes gives a pod with these containers."""
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        any_set = any_set or bool(req or lim)
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim[r]) != lim[r]:
                guaranteed = False
    return "Guaranteed" if guaranteed and any_set else "Burstable" if any_set else "BestEffort"


def check_resources(inst: Install) -> Finding:
    spec = inst.pod_spec
    cls = qos(list(spec.get("containers") or []) + list(spec.get("initContainers") or []))
    limit = ((inst.container.get("resources") or {}).get("limits") or {}).get("memory")
    parts = [f"QoS class {cls}"]
    if cls != "Guaranteed":
        parts.append("Burstable and BestEffort pods are evicted first under node pressure")
    parts.append(f"memory limit of {inst.container_name}: {limit or 'none'}")
    return Finding("M301", Severity.INFO, "; ".join(parts), object=inst.ref, field="resources", current=cls)
