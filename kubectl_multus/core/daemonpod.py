"""The Multus pod as the node sees it: killed or evicted while Burstable, the thick daemon's
socket gone from the host, containers the runtime could not start.

A Burstable pod is evicted before Guaranteed ones under node pressure, and its processes get
a high oom_score_adj (999 for the upstream thick manifest, whose init container sets requests
without limits). Without the daemon the shim on the host finds no socket and every pod's
network setup fails with `dial unix /run/multus/multus.sock: connect: no such file or directory`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.install import Install
from kubectl_multus.core.podchecks import qos
from kubectl_multus.core.snapshot import NodeFiles, Obj, Snapshot, meta

# The kernel's OOM-killer line (dmesg, journal) for a Multus process.
KERNEL_OOM = re.compile(r"Memory cgroup out of memory: Killed process \S+ \((?P<proc>multus[^)]*|thin_entrypoint)\)")
# What the shim (on the host, in the runtime's CNI call) prints when the daemon's socket is gone.
SHIM_NO_SOCKET = re.compile(r"dial unix (?P<sock>\S+multus\.sock): connect: no such file or directory")
# runc / crun through containerd or CRI-O: the command is not in the image.
NO_COMMAND = re.compile(
    r'exec: "(?P<cmd>[^"]+)": (?:stat \S+: no such file or directory|executable file not found in \$PATH)'
)
# The kubelet (or dockershim) refusing a mount whose propagation the host mount cannot give.
NOT_SHARED = re.compile(
    r'[Pp]ath "?(?P<path>[^" ]+?)"? is mounted on "?(?P<on>[^" ]+?)"? but it is not a shared(?P<slave> or slave)? mount'
)
RESOURCES = ("cpu", "memory")


@dataclass(frozen=True)
class Killed:
    node: str
    why: str  # evidence line


def pod_logs(snapshot: Snapshot, inst: Install, pod: Obj | None) -> str:
    """Every log of the pod's containers in the snapshot, current and previous runs."""
    if pod is None:
        return ""
    spec = inst.pod_spec
    names = [str(c.get("name")) for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or [])]
    texts = (snapshot.log(inst.namespace, meta(pod, "name"), n, prev) for n in names for prev in (False, True))
    return "\n".join(t for t in texts if t)


def kill_evidence(inst: Install, node: str, pod: Obj | None, logs: str) -> list[Killed]:
    """Why we know the Multus pod on `node` was evicted or OOM-killed (empty: no sign of it)."""
    out: list[Killed] = []
    if pod is not None:
        status = pod.get("status") or {}
        if status.get("reason") == "Evicted":
            out.append(Killed(node, f"pod {meta(pod, 'name')}: Evicted: {status.get('message') or ''}".rstrip(": ")))
        for s in list(status.get("containerStatuses") or []) + list(status.get("initContainerStatuses") or []):
            for state in ((s.get("state") or {}).get("terminated"), (s.get("lastState") or {}).get("terminated")):
                if state and state.get("reason") == "OOMKilled":
                    out.append(Killed(node, f"pod {meta(pod, 'name')}: container {s.get('name')} OOMKilled"))
                    break
    for line in logs.splitlines():
        if KERNEL_OOM.search(line):
            out.append(Killed(node, f"kernel: {line.strip()}"))
    return out


def _guaranteed_changes(inst: Install) -> tuple[list[Change], list[str]]:
    """Changes that make every container's limits equal its requests, and the containers whose
    values we cannot choose (no request to copy)."""
    spec = inst.pod_spec
    ds = Target("DaemonSet", inst.namespace, inst.name)
    changes: list[Change] = []
    unsure: list[str] = []
    for kind, key in (("container", "containers"), ("initContainer", "initContainers")):
        for c in spec.get(key) or []:
            name = str(c.get("name"))
            res = c.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            for r in RESOURCES:
                if r in lim and req.get(r, lim[r]) == lim[r]:
                    continue
                if r in lim:  # a request below the limit: the limit is what it may use, ask for that
                    changes.append(
                        Change(ds, f"ds.{kind}.{name}.resources.requests.{r}", str(lim[r]), str(req[r]), name)
                    )
                elif r in req and kind == "initContainer":  # it copies a binary and exits: its request suffices
                    changes.append(Change(ds, f"ds.{kind}.{name}.resources.limits.{r}", str(req[r]), None, name))
                elif r in req:
                    # a new cap on the daemon could kill or throttle it under load: a person picks the value
                    unsure.append(
                        f"{kind} {name} has no {r} limit (choose one, e.g. memory 200Mi as multus-cni PR 1383 "
                        "proposes, and set its request equal)"
                    )
                else:
                    unsure.append(f"{kind} {name} has neither a request nor a limit for {r}")
    return changes, unsure


def check_killed_burstable(inst: Install, killed: Sequence[Killed]) -> list[Finding]:
    """M303: a pod that was evicted or OOM-killed, of a DaemonSet that is not Guaranteed."""
    spec = inst.pod_spec
    cls = qos(list(spec.get("containers") or []) + list(spec.get("initContainers") or []))
    if not killed or cls == "Guaranteed":
        return []
    changes, unsure = _guaranteed_changes(inst)
    nodes = sorted({k.node for k in killed})
    fix = ", ".join(f"{c.key}={c.value}" for c in changes)
    remediation = f"set {fix} so the pod is Guaranteed" if changes else ""
    if unsure:
        remediation += ("; " if remediation else "") + "give requests and equal limits by hand: " + "; ".join(unsure)
    return [
        Finding(
            "M303",
            Severity.WARNING,
            f"the Multus pod was evicted or OOM-killed on {', '.join(nodes)} and its QoS class is {cls}: "
            "under memory pressure the kubelet and the kernel pick pods that are not Guaranteed first",
            object=inst.ref,
            field="resources",
            current=cls,
            expected="Guaranteed",
            evidence=tuple(k.why for k in killed),
            remediation=remediation
            + "; an OOM kill inside the container's own limit needs a higher limit instead (see M302)",
            changes=tuple(changes) if not unsure else (),
        )
    ]


def _socket(socket_dir: str | None) -> str:
    return posixpath.join(posixpath.normpath(socket_dir or "/run/multus/"), "multus.sock")


def socket_absent(inst: Install, files: NodeFiles | None, socket_dir: str | None) -> str | None:
    """Evidence that the thick daemon's socket is not on the host; None when it is there or unknown.
    Only a listing of the socket dir itself decides: tar skips sockets, and a listing of a parent
    dir says nothing about the files below."""
    sock = _socket(socket_dir)
    if inst.mode != "thick" or files is None or posixpath.dirname(sock) not in files.roots:
        return None
    if files.exists(sock) is not False:
        return None
    listing = files.listdir(posixpath.dirname(sock))
    return f"host {posixpath.dirname(sock)}: {', '.join(listing or []) or 'empty or absent'} (no multus.sock)"


def check_socket(inst: Install, files: NodeFiles | None, socket_dir: str | None, logs: str) -> list[Finding]:
    """M304: the thick shim's socket is not on the host (read from the node, or from the shim's error).
    Pass `files=None` when the daemon is known to be down: then a missing socket is no news."""
    if inst.mode != "thick":
        return []
    sock = _socket(socket_dir)
    evidence: list[str] = []
    absent = socket_absent(inst, files, socket_dir)
    seen = files is not None and absent is None and posixpath.dirname(sock) in files.roots
    if absent:
        evidence.append(absent)
    for line in logs.splitlines():
        m = SHIM_NO_SOCKET.search(line)
        if m and posixpath.normpath(m.group("sock")) == sock:
            evidence.append(f"shim: {line.strip()}")
            break
    if seen or not evidence:
        return []
    return [
        Finding(
            "M304",
            Severity.ERROR,
            f"the thick daemon's socket {sock} is not on the node: the shim cannot reach the daemon and every "
            "pod's network setup fails",
            object=inst.ref,
            field="daemon-config daemonSocketDir",
            current=sock,
            evidence=tuple(evidence),
            remediation="get the Multus pod on this node running (see the findings on it); if it runs, its "
            "socketDir must be the container path of the host's daemonSocketDir",
        )
    ]


def _statuses(pod: Obj) -> Iterable[tuple[Mapping[str, Any], bool]]:
    status = pod.get("status") or {}
    for s in status.get("initContainerStatuses") or []:
        yield s, True
    for s in status.get("containerStatuses") or []:
        yield s, False


def _messages(s: Mapping[str, Any]) -> list[str]:
    state, last = s.get("state") or {}, s.get("lastState") or {}
    return [
        str(m)
        for m in (
            (state.get("waiting") or {}).get("message"),
            (state.get("terminated") or {}).get("message"),
            (last.get("terminated") or {}).get("message"),
        )
        if m
    ]


# Upstream's thin image copies these to / (images/Dockerfile); the -thick image only has
# /usr/src/multus-cni/bin (images/Dockerfile.thick), so under it they are "no such file".
THIN_IMAGE_ONLY = ("/thin_entrypoint", "/install_multus")


def _other_image(image: str, command: str) -> str | None:
    """The upstream thin image, when a -thick one lacks the command the manifest runs."""
    if "k8snetworkplumbingwg/multus-cni" not in image or "@" in image or ":" not in image.rsplit("/", 1)[-1]:
        return None
    if command in THIN_IMAGE_ONLY and image.endswith("-thick"):
        return image.removesuffix("-thick")
    return None


def check_start_errors(inst: Install, node: str, pod: Obj | None) -> list[Finding]:
    """M307: what the runtime said when it could not start a Multus container."""
    if pod is None:
        return []
    containers = {
        str(c.get("name")): c
        for c in list(inst.pod_spec.get("containers") or []) + list(inst.pod_spec.get("initContainers") or [])
    }
    ds = Target("DaemonSet", inst.namespace, inst.name)
    out: list[Finding] = []
    for s, init in _statuses(pod):
        name = str(s.get("name"))
        spec = containers.get(name, {})
        for text in _messages(s):
            evidence = (f"pod {meta(pod, 'name')} container {name}: {text}",)
            m = NO_COMMAND.search(text)
            if m:
                image = str(spec.get("image") or s.get("image") or "")
                other = _other_image(image, m.group("cmd"))
                out.append(
                    Finding(
                        "M307",
                        Severity.ERROR,
                        f"{'init ' if init else ''}container {name} cannot start: its image {image} has no "
                        f"{m.group('cmd')}",
                        object=inst.ref,
                        field=f"container {name} command",
                        current=m.group("cmd"),
                        expected=None,
                        evidence=evidence,
                        remediation=f"use {other} (its entrypoint matches the command)"
                        if other
                        else "use the command the image has (thin: /thin_entrypoint; thick -thick image: "
                        "/usr/src/multus-cni/bin/multus-daemon), or the image the manifest was written for",
                        # every container of that image: the next one would fail the same way
                        changes=tuple(
                            Change(ds, "ds.image", other, image, n)
                            for n, c in containers.items()
                            if other and c.get("image") == image
                        ),
                    )
                )
                break
            m = NOT_SHARED.search(text)
            if m:
                wanted = "shared or slave" if m.group("slave") else "shared"
                out.append(
                    Finding(
                        "M307",
                        Severity.ERROR,
                        f"{'init ' if init else ''}container {name} cannot start: it asks for mount propagation on "
                        f"{m.group('path')}, but the host mount {m.group('on')} is not {wanted}",
                        object=inst.ref,
                        field=f"container {name} mountPropagation",
                        current=m.group("on"),
                        evidence=evidence,
                        remediation=f"on node {node}: `findmnt -o TARGET,PROPAGATION {m.group('on')}`; make it "
                        f"shared (`mount --make-rshared {m.group('on')}`, and in the boot config so it lasts), or "
                        "drop mountPropagation from that volumeMount if the container does not need it",
                    )
                )
                break
    return out


def check_propagation(inst: Install) -> list[Finding]:
    """M118: Bidirectional propagation is for privileged containers only (the API server refuses the
    pod: `Bidirectional mount propagation is available only to privileged containers`)."""
    ds = Target("DaemonSet", inst.namespace, inst.name)
    out: list[Finding] = []
    spec = inst.pod_spec
    for kind, key in (("container", "containers"), ("initContainer", "initContainers")):
        for c in spec.get(key) or []:
            if (c.get("securityContext") or {}).get("privileged") is True:
                continue
            mounts = [m for m in c.get("volumeMounts") or [] if m.get("mountPropagation") == "Bidirectional"]
            if not mounts:
                continue
            name = str(c.get("name"))
            out.append(
                Finding(
                    "M118",
                    Severity.ERROR,
                    f"{'init ' if kind == 'initContainer' else ''}container {name} mounts "
                    f"{', '.join(str(m.get('name')) for m in mounts)} with Bidirectional propagation but is not "
                    "privileged: the API server rejects its pods",
                    object=inst.ref,
                    field=f"container {name} securityContext.privileged",
                    current=None,
                    expected="true",
                    evidence=(
                        f"spec.template.spec.{key}[].volumeMounts[].mountPropagation: Forbidden: Bidirectional "
                        "mount propagation is available only to privileged containers",
                    ),
                    remediation=f"set securityContext.privileged: true on {name}",
                    changes=(Change(ds, f"ds.{kind}.{name}.securityContext.privileged", "true", None, name),),
                )
            )
    return out
