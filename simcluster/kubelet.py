"""The node side of the simulated cluster: a DaemonSet controller, and a kubelet that runs
every pod's containers as programs on the virtual clock, through the pod's own mounts.

Everything happens inside `sync()`, which every API request calls first: controllers
reconcile, then each pod's containers run up to the current virtual time, in time order
(a thin Multus that exits is restarted after its back-off; a thick one that waits for its
primary config sleeps until the config appears or its 120 s run out), then statuses are
written back into the stored objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simcluster import admission, selectors
from simcluster.api import ApiError, Kind
from simcluster.fs import ContainerFS
from simcluster.process import Clock, ContainerContext, Process, Ready, Wait

if TYPE_CHECKING:
    from simcluster.cluster import Cluster
    from simcluster.runtime import PodSandbox

Obj = dict[str, Any]
BACKOFF_MAX = 300.0
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's name-suffix alphabet
DS_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


@dataclass
class ContainerRun:
    spec: Obj
    init: bool
    ctx: ContainerContext | None = None
    gen: Process | None = None
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: float = 0.0
    ready: bool = False
    wake_at: float | None = None
    until: Callable[[], bool] | None = None
    waiting_since: float = 0.0
    restart_count: int = 0
    restart_at: float | None = None
    terminated: Obj | None = None
    last: Obj | None = None
    finished: list[tuple[float, str]] | None = None  # the log of the last instance that ended
    crashes: int = 0
    checked_writes: int = -1
    checked_ok: bool | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def lines(self) -> list[tuple[float, str]]:
        return self.ctx.lines if self.ctx is not None else []


@dataclass
class PodRun:
    ns: str
    name: str
    uid: str
    node: str
    started: float
    policy: str
    owned: bool  # a controller (DaemonSet) owns it
    inits: list[ContainerRun] = field(default_factory=list)
    mains: list[ContainerRun] = field(default_factory=list)
    sandbox: PodSandbox | None = None
    volume_error: str = ""
    phase: str = "Pending"
    reason: str = ""
    message: str = ""
    deadline_at: float | None = None
    last_sync: float = 0.0

    @property
    def initialized(self) -> bool:
        return all(c.state == "terminated" and c.terminated and c.terminated["exitCode"] == 0 for c in self.inits)


class Kubelet:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.pods: dict[tuple[str, str], PodRun] = {}
        self.rand = random.Random(7)
        self._synced: tuple[float, str, int] | None = None
        self._failed_create: dict[str, str] = {}
        cluster.store.listeners.append(self._on_change)

    @property
    def clock(self) -> Clock:
        return self.cluster.clock

    def kind(self, plural: str, group: str = "") -> Kind:
        return self.cluster.kind(plural, group)

    def suffix(self) -> str:
        return "".join(self.rand.choice(ALPHABET) for _ in range(5))

    # --- object defaults --------------------------------------------------------------
    def default_pod(self, pod: Obj) -> None:
        spec = pod.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("securityContext", {})
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", "Always" if str(c.get("image", "")).endswith(":latest") else "IfNotPresent")
            c.setdefault("resources", {})
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(
                t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists") for t in tolerations
            ):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
        pod.setdefault("status", {"phase": "Pending", "qosClass": qos_class(spec)})

    # --- events -----------------------------------------------------------------------
    def _on_change(self, event: str, kind: Kind, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        if kind.kind == "Pod":
            key = (meta.get("namespace", ""), meta.get("name", ""))
            if event == "ADDED":
                self._admit(obj)
            elif event == "DELETED" and key in self.pods:
                self._stop(self.pods.pop(key))
        elif kind.kind == "ConfigMap":
            for run in self.pods.values():
                if run.sandbox is not None and run.ns == meta.get("namespace"):
                    run.sandbox.refresh_configmaps()

    def _admit(self, pod: Obj) -> None:
        spec = pod["spec"]
        meta = pod["metadata"]
        node = spec.get("nodeName") or self._schedule(pod)
        if not node or self.cluster.store.find(self.kind("nodes"), "", node) is None:
            return  # bound to no node, or to one that does not exist: Pending, as no kubelet picks it up
        spec["nodeName"] = node
        owned = any(o.get("controller") for o in meta.get("ownerReferences") or [])
        now = self.clock.now()
        run = PodRun(
            meta["namespace"],
            meta["name"],
            meta["uid"],
            node,
            now,
            spec.get("restartPolicy", "Always"),
            owned,
            last_sync=now,
        )
        run.inits = [ContainerRun(c, True) for c in spec.get("initContainers") or []]
        run.mains = [ContainerRun(c, False) for c in spec.get("containers") or []]
        if spec.get("activeDeadlineSeconds") is not None:
            run.deadline_at = now + float(spec["activeDeadlineSeconds"])
        self.pods[(run.ns, run.name)] = run

    def _schedule(self, pod: Obj) -> str:
        for node in self.cluster.store.list(self.kind("nodes")):
            if node_fits(node, pod["spec"]):
                return str(node["metadata"]["name"])
        return ""

    def _stop(self, run: PodRun) -> None:
        for c in run.mains:
            if c.state == "running" and c.ctx is not None:
                c.ctx.at = self.clock.now()
                for hook in c.ctx.on_stop:
                    hook()
        if run.sandbox is not None:
            shutil.rmtree(self.cluster.workdir / "pods" / run.uid, ignore_errors=True)

    def stop_all(self) -> None:
        for run in list(self.pods.values()):
            self._stop(run)
        self.pods.clear()

    # --- the loop ---------------------------------------------------------------------
    def sync(self, *, force: bool = False) -> None:
        from simcluster.fs import WRITES

        if force:
            WRITES[0] += 1  # a test may have written node files directly: look at them again
        now = self.clock.now()
        key = (now, self.cluster.store.resource_version, WRITES[0])
        if key == self._synced and not force:
            return  # nothing moved: every request of a large cluster must not cost a full pass
        self._reconcile_daemonsets()
        for run in list(self.pods.values()):
            self._advance(run, now)
            run.last_sync = now
        self._write_status(now)
        self._synced = (now, self.cluster.store.resource_version, WRITES[0])

    def _advance(self, run: PodRun, now: float) -> None:
        if run.phase in ("Succeeded", "Failed"):
            return
        if run.sandbox is None and run.deadline_at is not None and run.deadline_at <= now:
            self._deadline(run)  # counted from admission, started or not
            return
        if run.sandbox is None and not self._start_sandbox(run):
            return
        for _ in range(100000):
            if run.deadline_at is not None and run.deadline_at <= now and self._next_time(run, now) >= run.deadline_at:
                self._deadline(run)
                return
            step = self._next(run, now)
            if step is None:
                return
            c, t, woke = step
            self._step(run, c, t, woke)
            if run.phase in ("Succeeded", "Failed"):
                return

    def _start_sandbox(self, run: PodRun) -> bool:
        from simcluster.runtime import PodSandbox, VolumeError

        pod = self.cluster.store.find(self.kind("pods"), run.ns, run.name)
        if pod is None:
            return False
        if not run.owned and self.cluster.faults.helper_never_starts:
            for c in run.inits + run.mains:
                c.reason, c.message = "ImagePullBackOff", f'Back-off pulling image "{c.spec.get("image")}"'
            return False
        store = self.cluster.store

        def configmap(ns: str, name: str) -> Obj | None:
            return store.find(self.kind("configmaps"), ns, name)

        try:
            run.sandbox = PodSandbox(
                pod,
                self.cluster.node_root(run.node),
                self.cluster.workdir / "pods" / run.uid,
                configmap,
                tuple(sorted(self.cluster.read_only.get(run.node, ()))),
                selinux=run.node in self.cluster.faults.selinux_enforcing,
            )
        except VolumeError as err:
            if run.volume_error != str(err):
                self._event(pod, "FailedMount", err.event, "Warning")
            run.volume_error = str(err)
            return False
        run.volume_error = ""
        first = run.inits[0] if run.inits else None
        for c in run.mains if first is None else [first]:
            c.restart_at = run.started
        for c in run.mains if first is not None else []:
            c.reason = "PodInitializing"
        if first is not None:
            for c in run.inits[1:]:
                c.reason = "PodInitializing"
        return True

    def _event(self, pod: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        """A core/v1 Event about a pod, as the kubelet records one (FailedMount, BackOff…)."""
        meta = pod["metadata"]
        event = {
            "metadata": {"name": f"{meta['name']}.{self.suffix()}{self.suffix()}", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
                "apiVersion": "v1",
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": "kubelet", "host": pod["spec"].get("nodeName", "")},
            "firstTimestamp": Clock.stamp(self.clock.now()),
            "lastTimestamp": Clock.stamp(self.clock.now()),
            "count": 1,
        }
        self.cluster.store.create(self.kind("events"), event)

    def _holds(self, c: ContainerRun) -> bool:
        """c.until(), evaluated again only once files have changed: conditions are about files,
        and on a large cluster most syncs change none."""
        from simcluster.fs import WRITES

        if c.checked_writes == WRITES[0] and c.checked_ok is not None:
            return c.checked_ok
        assert c.until is not None
        c.checked_writes, c.checked_ok = WRITES[0], c.until()
        return c.checked_ok

    def _next_time(self, run: PodRun, now: float) -> float:
        step = self._next(run, now)
        return step[1] if step else math.inf

    def _next(self, run: PodRun, now: float) -> tuple[ContainerRun, float, bool | None] | None:
        """The earliest due event: a (re)start, a wait running out, or a condition that holds."""
        best: tuple[ContainerRun, float, bool | None] | None = None
        for c in run.inits + run.mains:
            if c.state == "waiting" and c.restart_at is not None and c.restart_at <= now:
                cand: tuple[ContainerRun, float, bool | None] = (c, c.restart_at, None)
            elif c.state == "running" and c.gen is not None and c.until is not None and self._holds(c):
                cand = (c, max(c.waiting_since, run.last_sync), True)
            elif c.state == "running" and c.gen is not None and c.wake_at is not None and c.wake_at <= now:
                cand = (c, c.wake_at, False)
            else:
                continue
            if best is None or cand[1] < best[1]:
                best = cand
        return best

    def _step(self, run: PodRun, c: ContainerRun, t: float, woke: bool | None) -> None:
        if woke is None:
            self._start_container(run, c, t)
            return
        assert c.gen is not None and c.ctx is not None
        self._resume(run, c, t, lambda: c.gen.send(woke))  # type: ignore[union-attr]

    def _start_container(self, run: PodRun, c: ContainerRun, t: float) -> None:
        from simcluster.runtime import exec_error, missing_command, program

        assert run.sandbox is not None
        if c.ctx is not None:
            c.restart_count += 1
        node = self.cluster.store.find(self.kind("nodes"), "", run.node) or {"metadata": {"name": run.node}}
        pod = self.cluster.store.find(self.kind("pods"), run.ns, run.name) or {}
        fs = run.sandbox.container_fs(c.spec)
        c.ctx = ContainerContext(pod, c.spec, fs, run.node, self.clock, env=run.sandbox.env(c.spec, node), at=t)
        c.state, c.reason, c.message, c.terminated = "running", "", "", None
        c.started_at, c.ready, c.restart_at = t, False, None
        failed = exec_error(c.spec)
        missing = missing_command(c.spec, fs) if failed is None else None
        if missing is not None:  # an entrypoint this image does not carry (a -thick image has no /thin_entrypoint)
            failed = (
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                "runc create failed: unable to start container process: "
                f'exec: "{missing}": stat {missing}: no such file or directory: unknown'
            )
        if failed is not None:  # runc could not exec the command: the process never ran; StartError, 128
            self._exited(run, c, t, 128, "StartError", failed)
            return
        c.gen = program(c.spec, init=c.init)(c.ctx)
        self._resume(run, c, t, lambda: next(c.gen))  # type: ignore[arg-type]

    def _resume(self, run: PodRun, c: ContainerRun, t: float, advance: Callable[[], Wait | Ready]) -> None:
        assert c.ctx is not None and c.gen is not None
        c.ctx.at = t
        try:
            step = advance()
            while isinstance(step, Ready):
                c.ready = True
                step = c.gen.send(True)
        except StopIteration as stop:
            self._exited(run, c, t, int(stop.value or 0))
            return
        c.waiting_since = t
        c.wake_at = None if step.seconds is None else t + step.seconds
        c.until, c.checked_ok = step.until, None
        if self._over_memory_limit(c):
            # SIGKILL from the kernel: no SIGTERM, so nothing the process would clean up on stop
            self._exited(run, c, t, 137, "OOMKilled")

    def _over_memory_limit(self, c: ContainerRun) -> bool:
        use = self.cluster.faults.memory_use.get(c.name)
        limit = ((c.spec.get("resources") or {}).get("limits") or {}).get("memory")
        if use is None or limit is None:
            return False
        return memory_bytes(use) > memory_bytes(str(limit))

    def oom_kill(self, node: str, container: str) -> None:
        """The kernel's OOM killer ends `container` of the pod on `node` (SIGKILL: no shutdown hooks,
        so whatever it left on disk stays); the kubelet reports exit 137, reason OOMKilled, and
        restarts it after the usual back-off."""
        with self.cluster.lock:
            now = self.clock.now()
            for run in self.pods.values():
                c = next((m for m in run.mains if m.name == container and m.state == "running"), None)
                if run.node != node or c is None:
                    continue
                self._exited(run, c, now, 137, "OOMKilled")
            self._write_status(now)

    def _exited(self, run: PodRun, c: ContainerRun, t: float, code: int, reason: str = "", message: str = "") -> None:
        c.state, c.gen, c.until, c.wake_at, c.ready = "terminated", None, None, None, False
        c.terminated = {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
            **({"message": message} if message else {}),
            # a container that never started reports the zero time, as the kubelet does
            "startedAt": Clock.stamp(c.started_at) if reason != "StartError" else "1970-01-01T00:00:00Z",
            "finishedAt": Clock.stamp(t),
            "containerID": f"containerd://{hashlib.sha256(f'{run.uid}{c.name}{c.restart_count}'.encode()).hexdigest()}",
        }
        c.finished = c.ctx.lines if c.ctx is not None else []
        if c.init:
            if code == 0:
                rest = [i for i in run.inits if i.state == "waiting" and i.ctx is None]
                for nxt in rest[:1] or run.mains:
                    nxt.restart_at = t
                return
            if run.policy == "Never":
                run.phase, run.reason = "Failed", ""
                return
            self._back_off(run, c, t)
            return
        if run.policy == "Always" or (run.policy == "OnFailure" and code != 0):
            self._back_off(run, c, t)
            return
        if all(m.state == "terminated" for m in run.mains):
            ok = all(m.terminated and m.terminated["exitCode"] == 0 for m in run.mains)
            run.phase = "Succeeded" if ok else "Failed"

    def _back_off(self, run: PodRun, c: ContainerRun, t: float) -> None:
        # The kubelet's restart back-off: 10 s doubling to 5 min; a container that ran
        # 10 minutes without trouble starts over at 10 s.
        if t - c.started_at >= 600:
            c.crashes = 0
        delay = min(10.0 * 2**c.crashes, BACKOFF_MAX)
        c.crashes += 1
        c.last, c.terminated = c.terminated, None
        c.restart_at = t + delay
        c.state = "waiting"
        c.reason = "CrashLoopBackOff"
        c.message = (
            f"back-off {go_duration(delay)} restarting failed container={c.name} pod={run.name}_{run.ns}({run.uid})"
        )

    def _deadline(self, run: PodRun) -> None:
        for c in run.inits + run.mains:
            if c.state == "running" and c.ctx is not None:
                for hook in c.ctx.on_stop:
                    hook()
                self._exited_quietly(run, c)
        run.phase, run.reason = "Failed", "DeadlineExceeded"
        run.message = "Pod was active on the node longer than the specified deadline"

    def _exited_quietly(self, run: PodRun, c: ContainerRun) -> None:
        t = run.deadline_at or self.clock.now()
        c.state, c.gen = "terminated", None
        c.terminated = {
            "exitCode": 137,
            "reason": "Error",
            "startedAt": Clock.stamp(c.started_at),
            "finishedAt": Clock.stamp(t),
        }

    # --- DaemonSet controller -----------------------------------------------------------
    def _reconcile_daemonsets(self) -> None:
        store = self.cluster.store
        pods_kind, ds_kind = self.kind("pods"), self.kind("daemonsets", "apps")
        all_ds = {ds["metadata"]["uid"]: ds for ds in store.list(ds_kind)}
        owned: dict[str, list[Obj]] = {}
        for pod in list(store.list(pods_kind)):
            owner = next(
                (o for o in pod["metadata"].get("ownerReferences") or [] if o.get("kind") == "DaemonSet"), None
            )
            if owner is None:
                continue
            if owner.get("uid") not in all_ds:
                store.delete(pods_kind, pod["metadata"]["namespace"], pod["metadata"]["name"])  # garbage collection
                continue
            owned.setdefault(owner["uid"], []).append(pod)
        nodes = list(store.list(self.kind("nodes")))
        for uid, ds in all_ds.items():
            self._reconcile(ds, nodes, owned.get(uid, []))

    def _reconcile(self, ds: Obj, nodes: list[Obj], pods: list[Obj]) -> None:
        store = self.cluster.store
        pods_kind = self.kind("pods")
        template = ds["spec"].get("template") or {}
        revision = template_hash(template)
        on_delete = (ds["spec"].get("updateStrategy") or {}).get("type") == "OnDelete"
        spec = copy.deepcopy(template.get("spec") or {})
        spec["tolerations"] = list(spec.get("tolerations") or []) + DS_TOLERATIONS
        wanted = {n["metadata"]["name"] for n in nodes if node_fits(n, spec)}
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod)
        for node, current in by_node.items():
            for pod in current:
                stale = pod["metadata"].get("labels", {}).get("controller-revision-hash") != revision
                if node not in wanted or (stale and not on_delete):
                    store.delete(pods_kind, pod["metadata"]["namespace"], pod["metadata"]["name"])
        for node in sorted(wanted):
            alive = [
                p
                for p in by_node.get(node, [])
                if store.find(pods_kind, p["metadata"]["namespace"], p["metadata"]["name"])
            ]
            if not alive:
                self._create_ds_pod(ds, template, revision, node)

    def _create_ds_pod(self, ds: Obj, template: Obj, revision: str, node: str) -> None:
        meta = ds["metadata"]
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels["controller-revision-hash"] = revision
        labels["pod-template-generation"] = str(meta.get("generation", 1))
        spec = copy.deepcopy(template.get("spec") or {})
        spec["tolerations"] = list(spec.get("tolerations") or []) + DS_TOLERATIONS
        spec["nodeName"] = node
        spec["affinity"] = {
            **(spec.get("affinity") or {}),
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                    ]
                }
            },
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{self.suffix()}",
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "DaemonSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        self.default_pod(pod)
        try:
            admission.pod_security(self.cluster.store.find(self.kind("namespaces"), "", meta["namespace"]), pod)
            self.cluster.store.create(self.kind("pods"), pod)
        except ApiError as err:
            ds.setdefault("status", {})["conditions"] = [
                {"type": "FailedCreate", "status": "True", "message": err.message}
            ]

    # --- status -------------------------------------------------------------------------
    def _write_status(self, now: float) -> None:
        store = self.cluster.store
        pods_kind = self.kind("pods")
        for run in self.pods.values():
            pod = store.find(pods_kind, run.ns, run.name)
            if pod is not None:
                store.set_status(pods_kind, pod, self._pod_status(run, pod))
        ds_kind = self.kind("daemonsets", "apps")
        for ds in store.list(ds_kind):
            store.set_status(ds_kind, ds, self._ds_status(ds))

    def _ready(self, run: PodRun, c: ContainerRun) -> bool:
        if c.state != "running":
            return False
        never = self.cluster.faults.never_ready
        if run.owned and ("*" in never or run.node in never):
            return False
        return c.ready or "readinessProbe" not in c.spec

    def _container_status(self, run: PodRun, c: ContainerRun) -> Obj:
        state: Obj
        if c.state == "running":
            state = {"running": {"startedAt": Clock.stamp(c.started_at)}}
        elif c.state == "terminated":
            state = {"terminated": c.terminated}
        else:
            state = {"waiting": {"reason": c.reason, **({"message": c.message} if c.message else {})}}
        status: Obj = {
            "name": c.name,
            "image": c.spec.get("image", ""),
            "imageID": "",
            "ready": self._ready(run, c),
            "restartCount": c.restart_count,
            "started": c.state == "running",
            "state": state,
            "lastState": {"terminated": c.last} if c.last else {},
        }
        cid = (c.terminated or {}).get("containerID") or (c.last or {}).get("containerID")
        if c.ctx is not None:
            status["containerID"] = (
                cid or f"containerd://{hashlib.sha256(f'{run.uid}{c.name}{c.restart_count}'.encode()).hexdigest()}"
            )
        return status

    def _pod_status(self, run: PodRun, pod: Obj) -> Obj:
        mains = [self._container_status(run, c) for c in run.mains]
        inits = [self._container_status(run, c) for c in run.inits]
        ready = bool(mains) and all(s["ready"] for s in mains) and run.phase not in ("Failed", "Succeeded")
        phase = run.phase
        if (
            phase == "Pending"
            and run.sandbox is not None
            and run.initialized
            and any(c.ctx is not None for c in run.mains)
        ):
            phase = "Running"
        stamp = Clock.stamp(run.started)
        node = self.cluster.store.find(self.kind("nodes"), "", run.node) or {}
        host_ip = next(
            (
                a.get("address")
                for a in (node.get("status") or {}).get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            "10.0.0.1",
        )
        status: Obj = {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
                {"type": "Initialized", "status": str(run.initialized), "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": stamp},
                {"type": "Ready", "status": str(ready), "lastTransitionTime": stamp},
            ],
            "hostIP": host_ip,
            "podIP": host_ip if pod["spec"].get("hostNetwork") else f"10.42.0.{len(run.name) % 200 + 10}",
            "startTime": stamp,
            "containerStatuses": mains,
            "qosClass": qos_class(pod["spec"]),
        }
        if inits:
            status["initContainerStatuses"] = inits
        if run.reason:
            status["reason"], status["message"] = run.reason, run.message
        return status

    def _ds_status(self, ds: Obj) -> Obj:
        store = self.cluster.store
        uid = ds["metadata"]["uid"]
        revision = template_hash(ds["spec"].get("template") or {})
        pods = [
            p
            for p in store.list(self.kind("pods"), ds["metadata"]["namespace"])
            if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences") or [])
        ]
        ready = [
            p
            for p in pods
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]
        spec = copy.deepcopy((ds["spec"].get("template") or {}).get("spec") or {})
        spec["tolerations"] = list(spec.get("tolerations") or []) + DS_TOLERATIONS
        desired = sum(1 for n in store.list(self.kind("nodes")) if node_fits(n, spec))
        status = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": len(ready),
            "numberAvailable": len(ready),
            "updatedNumberScheduled": sum(
                1 for p in pods if p["metadata"].get("labels", {}).get("controller-revision-hash") == revision
            ),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if len(ready) < desired:
            status["numberUnavailable"] = desired - len(ready)
        return status

    # --- what the API server asks the kubelet -------------------------------------------------
    def _run_of(self, pod: Obj) -> PodRun | None:
        return self.pods.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def _container(self, run: PodRun | None, pod: Obj, name: str, *, logs: bool) -> ContainerRun:
        spec = pod.get("spec") or {}
        mains = [c["name"] for c in spec.get("containers") or []]
        inits = [c["name"] for c in spec.get("initContainers") or []]
        pod_name = pod["metadata"]["name"]
        if not name:
            if len(mains) != 1:
                extra = f" or one of the init containers: [{' '.join(inits)}]" if inits and logs else ""
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(mains)}]{extra}",
                )
            name = mains[0]
        if name not in mains + (inits if logs else []):
            raise ApiError(400, "BadRequest", f"container {name} is not valid for pod {pod_name}")
        if run is None:
            raise ApiError(
                400, "BadRequest", f'container "{name}" in pod "{pod_name}" is waiting to start: ContainerCreating'
            )
        return next(c for c in run.inits + run.mains if c.name == name)

    def logs(self, pod: Obj, query: dict[str, list[str]]) -> str:
        def arg(key: str) -> str:
            return query.get(key, [""])[-1]

        run = self._run_of(pod)
        c = self._container(run, pod, arg("container"), logs=True)
        pod_name = pod["metadata"]["name"]
        # As the kubelet picks the instance: --previous is lastState; otherwise the running or
        # ended one, and while a crash-looping container waits, the one that just ended.
        if arg("previous") in ("true", "True", "1"):
            if c.last is None or c.finished is None:
                raise ApiError(
                    400, "BadRequest", f'previous terminated container "{c.name}" in pod "{pod_name}" not found'
                )
            lines = c.finished
        elif c.state in ("running", "terminated") and c.ctx is not None:
            lines = c.lines
        elif c.last is not None and c.finished is not None:
            lines = c.finished
        else:
            raise ApiError(
                400,
                "BadRequest",
                f'container "{c.name}" in pod "{pod_name}" is waiting to start: {c.reason or "ContainerCreating"}',
            )
        if arg("sinceSeconds"):
            since = self.clock.now() - float(arg("sinceSeconds"))
            lines = [x for x in lines if x[0] >= since]
        if arg("tailLines"):
            n = int(arg("tailLines"))
            lines = lines[-n:] if n > 0 else []
        stamp = arg("timestamps") in ("true", "True", "1")
        text = "".join(
            f"{Clock.stamp(t).replace('Z', '.000000000Z') + ' ' if stamp else ''}{line}\n" for t, line in lines
        )
        if arg("limitBytes"):
            text = text.encode()[: int(arg("limitBytes"))].decode(errors="ignore")
        return text

    def exec_target(self, pod: Obj, container: str) -> tuple[ContainerFS, str, dict[str, str]]:
        """What an exec runs against: the container's files, its image and environment."""
        fs = self.exec_fs(pod, container)
        run = self._run_of(pod)
        assert run is not None
        c = self._container(run, pod, container, logs=False)
        assert c.ctx is not None
        return fs, str(c.spec.get("image", "")), dict(c.ctx.env)

    def exec_fs(self, pod: Obj, container: str) -> ContainerFS:
        from simcluster.server import ExecRefused

        if not (pod.get("spec") or {}).get("nodeName"):
            body = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"pod {pod['metadata']['name']} does not have a host assigned",
                "reason": "BadRequest",
                "code": 400,
            }
            raise ExecRefused(400, json.dumps(body).encode(), "application/json")
        run = self._run_of(pod)
        try:
            c = self._container(run, pod, container, logs=False)
        except ApiError as err:
            raise ExecRefused(err.code, json.dumps(err.status()).encode(), "application/json") from err
        if c.state != "running" or c.ctx is None or (run is not None and run.phase in ("Succeeded", "Failed")):
            raise ExecRefused(500, f'container not found ("{c.name}")'.encode())
        return c.ctx.fs


def memory_bytes(quantity: str) -> float:
    """A Kubernetes memory quantity in bytes: 50Mi, 1Gi, 128M, 5e6, 1048576."""
    m = re.fullmatch(r"([0-9.]+(?:[eE][0-9]+)?)([KMGTPE]i?|k|m)?", quantity.strip())
    if m is None:
        raise ValueError(f"quantities must match the regular expression: {quantity!r}")
    units = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "m": 1e-3}
    suffix = m[2] or ""
    factor = 1024.0 ** ("KMGTPE".index(suffix[0]) + 1) if suffix.endswith("i") else units.get(suffix, 1.0)
    return float(m[1]) * factor


def go_duration(seconds: float) -> str:
    """As Go prints a time.Duration: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(ALPHABET[int(digest[i : i + 2], 16) % len(ALPHABET)] for i in range(0, 20, 2))


def node_fits(node: Obj, spec: Obj) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        or {}
    ).get("nodeSelectorTerms")
    try:
        if required and not any(selectors.node_selector_matches(node, term) for term in required):
            return False
    except selectors.SelectorError:
        return False  # the scheduler never places a pod whose affinity it cannot read
    return selectors.tolerates(spec.get("tolerations") or [], (node.get("spec") or {}).get("taints") or [])


def qos_class(spec: Obj) -> str:
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    requests = [((c.get("resources") or {}).get("requests") or {}) for c in containers]
    limits = [((c.get("resources") or {}).get("limits") or {}) for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get("cpu")
        and lim.get("memory")
        and req.get("cpu", lim["cpu"]) == lim["cpu"]
        and req.get("memory", lim["memory"]) == lim["memory"]
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"
