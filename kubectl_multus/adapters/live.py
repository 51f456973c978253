"""A live cluster as a Snapshot: a constant number of list calls, then bounded-parallel per-node
work (logs, and node files through the Multus pod or a helper pod).

Objects are read as the raw JSON the API server sends (`_preload_content=False`), the same
dicts a dump holds, so both sources feed one model.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubectl_multus.adapters import helperpod, nodefs
from kubectl_multus.adapters.helperpod import core_api
from kubectl_multus.adapters.kubeconn import Connection, new_client
from kubectl_multus.adapters.podexec import ExecRefused
from kubectl_multus.core import capture, hostwrites
from kubectl_multus.core.attachments import requests_networks
from kubectl_multus.core.install import Install, find_installs
from kubectl_multus.core.paths import MountTable
from kubectl_multus.core.primarycni import CILIUM_CONFIG, primary_kind
from kubectl_multus.core.scheduling import runs_on, settled_host_paths
from kubectl_multus.core.snapshot import NodeFiles, Obj, Snapshot, meta
from kubectl_multus.errors import ClusterError, InputError, NodeAccessError

DEFAULT_HELPER_IMAGE = "docker.io/library/busybox:1.36.1"
NAD = ("k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition")
HELMCHART = ("helm.cattle.io", "v1", "helmcharts", "HelmChart")  # k3s/RKE2: who manages the chart
COMPLETED_INIT_TAIL = 50  # lines of an init container that exited 0: what it said last
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Options:
    namespace: str | None = None
    node: str | None = None
    parallel: int = 8
    helper_image: str = DEFAULT_HELPER_IMAGE
    helper_namespace: str | None = None
    helpers: str = "auto"  # auto: only where exec into Multus cannot read | always | never
    start_timeout: float = 60.0
    exec_timeout: float = 60.0
    log_lines: int = 500
    helper_deadline: int = 300


@dataclass
class Job:
    """One live read: what every per-node worker shares, and the results they fill in."""

    conn: Connection
    opts: Options
    helpers: helperpod.HelperPods
    installs: list[Install]
    pods: list[Obj]
    daemonsets: list[Obj] = field(default_factory=list)
    logs: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    files: dict[str, NodeFiles] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # Images whose containers cannot run tar/find (distroless, as upstream Multus is): learnt on
    # the first node, so the others go straight to a helper pod instead of trying exec first.
    no_tools: set[str] = field(default_factory=set)
    probes: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def may_exec(self, image: str) -> bool:
        """Whether to try exec into a pod of `image`. The first worker to ask probes; the others
        wait for its answer, so a distroless image costs one failed exec, not one per node."""
        with self.lock:
            if image in self.no_tools:
                return False
            probe = self.probes.get(image)
            if probe is None:
                self.probes[image] = threading.Event()
                return True
        probe.wait(self.opts.exec_timeout)
        with self.lock:
            return image not in self.no_tools

    def probed(self, image: str, tools: bool | None) -> None:
        with self.lock:
            if tools is False:
                self.no_tools.add(image)
            probe = self.probes.get(image)
        if probe is not None:
            probe.set()


@contextmanager
def api_errors(conn: Connection, what: str) -> Iterator[None]:
    """Our one-line errors from whatever the client raises."""
    from kubernetes.client import ApiException
    from urllib3.exceptions import HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError

    try:
        yield
    except ApiException as exc:
        message = helperpod.api_message(exc)
        if exc.status == 401:
            raise ClusterError(
                f"{what}: unauthorized at {conn.server} (context {conn.context}): check the credentials"
            ) from exc
        raise ClusterError(f"{what}: {message} ({exc.status})") from exc
    except ReadTimeoutError as exc:
        raise ClusterError(
            f"{what}: the API server at {conn.server} did not answer within {conn.timeout or 0:g}s"
        ) from exc
    except MaxRetryError as exc:
        reason = str(exc.reason or "error").split("new connection: ")[-1]
        unresolved = re.search(r"Failed to resolve '([^']+)'", reason)  # urllib3 2's NameResolutionError
        if unresolved:
            reason = f"the host name {unresolved.group(1)} cannot be resolved"
        reason = re.sub(r"^\[Errno -?\d+\] ", "", reason).rstrip("')\"")
        if isinstance(exc.reason, ReadTimeoutError):
            raise ClusterError(
                f"{what}: the API server at {conn.server} did not answer within {conn.timeout or 0:g}s"
            ) from exc
        raise ClusterError(
            f"{what}: cannot reach the API server at {conn.server} (context {conn.context}): {reason}"
        ) from exc
    except (ProtocolError, HTTPError, OSError) as exc:
        raise ClusterError(f"{what}: cannot reach the API server at {conn.server}: {exc}") from exc


def _items(resp: Any) -> list[Obj]:
    return list(json.loads(resp.data).get("items") or [])


def _selector(ds: Obj) -> str:
    labels = ((ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def read(
    conn: Connection, opts: Options, helpers: helperpod.HelperPods, progress: Callable[[str], None] = lambda _: None
) -> Snapshot:
    import time

    from kubernetes.client import ApiException, AppsV1Api, CoreV1Api, CustomObjectsApi

    captured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # "now" for expiry checks
    client = new_client(conn)
    kw: dict[str, Any] = {"_preload_content": False, "_request_timeout": conn.timeout}
    core: Any = CoreV1Api(client)
    apps: Any = AppsV1Api(client)
    try:
        with api_errors(conn, "listing nodes"):
            nodes = _items(core.list_node(**kw))
        with api_errors(conn, "listing DaemonSets"):
            if opts.namespace:
                daemonsets = _items(apps.list_namespaced_daemon_set(opts.namespace, **kw))
            else:
                daemonsets = _items(apps.list_daemon_set_for_all_namespaces(**kw))
        source = f"cluster {conn.context} ({conn.server})"
        partial = Snapshot(source, tuple(nodes), tuple(daemonsets))
        installs = find_installs(partial, opts.namespace)
        if not installs:
            return partial
        if opts.node and not any(meta(n, "name") == opts.node for n in nodes):
            names = sorted(meta(n, "name") for n in nodes)
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            raise InputError(f"node {opts.node} not found; the cluster's nodes: {shown or 'none'}")
        configmaps: list[Obj] = []
        pods: list[Obj] = []
        for ns in sorted({i.namespace for i in installs}):
            with api_errors(conn, f"listing ConfigMaps in {ns}"):
                configmaps += _items(core.list_namespaced_config_map(ns, **kw))
        # Cilium's cni-exclusive (ConfigMap cilium-config) when Cilium lives outside Multus's
        # namespaces: one filtered list per such namespace, none on clusters without Cilium.
        for ns in sorted(
            {meta(d, "namespace") for d in daemonsets if primary_kind(d) == "cilium"} - {i.namespace for i in installs}
        ):
            try:
                with api_errors(conn, f"listing ConfigMap {ns}/{CILIUM_CONFIG}"):
                    configmaps += _items(
                        core.list_namespaced_config_map(ns, field_selector=f"metadata.name={CILIUM_CONFIG}", **kw)
                    )
            except ClusterError as exc:  # not ours to read: the finding then says to check by hand
                if not isinstance(exc.__cause__, ApiException) or exc.__cause__.status not in (403, 404):
                    raise
        for inst in installs:
            with api_errors(conn, f"listing the pods of {inst.ref}"):
                pods += _items(core.list_namespaced_pod(inst.namespace, label_selector=_selector(inst.ds), **kw))
        others: list[Obj] = []
        for group, version, plural, kind in (NAD, HELMCHART):
            try:  # custom resources: absent without their CRD
                with api_errors(conn, f"listing {plural}"):
                    found = _items(CustomObjectsApi(client).list_cluster_custom_object(group, version, plural, **kw))
                others += [{"apiVersion": f"{group}/{version}", "kind": kind, **o} for o in found]
            except ClusterError as exc:
                if not isinstance(exc.__cause__, ApiException) or exc.__cause__.status not in (403, 404):
                    raise
        workloads: list[Obj] = []
        if any(o["kind"] == NAD[3] for o in others):
            # One more list, only where pods can ask for networks; only the pods that ask are kept.
            try:
                with api_errors(conn, "listing pods in all namespaces"):
                    workloads = [p for p in _items(core.list_pod_for_all_namespaces(**kw)) if requests_networks(p)]
            except ClusterError as exc:
                if not isinstance(exc.__cause__, ApiException) or exc.__cause__.status != 403:
                    raise  # forbidden (a namespaced RBAC): the pod checks are skipped, the rest goes on
    finally:
        client.close()
    targets = sorted(
        {meta(n, "name") for n in nodes for i in installs if runs_on(n, i.ds)}
        | {str((p.get("spec") or {}).get("nodeName") or "") for p in pods} - {""}
    )
    if opts.node:
        targets = [opts.node]
    job = Job(conn, opts, helpers, installs, pods, daemonsets)
    by_node = {meta(n, "name"): n for n in nodes}
    local = threading.local()

    def work(node: str) -> None:
        if not hasattr(local, "client"):
            local.client = new_client(conn)  # one client per thread: exec swaps the client's transport
        _read_node(job, local.client, by_node.get(node) or {"metadata": {"name": node}})

    for done, _ in enumerate(bounded(work, targets, opts.parallel), 1):
        progress(f"read {done}/{len(targets)} nodes")
    return Snapshot(
        source,
        tuple(nodes),
        tuple(daemonsets),
        tuple(configmaps),
        tuple(pods),
        tuple(others),
        job.logs,
        job.files,
        job.errors,
        captured_at,
        tuple(workloads),
    )


def _pod_on(pods: list[Obj], inst: Install, node: str) -> Obj | None:
    owned = [
        p
        for p in pods
        if meta(p, "namespace") == inst.namespace
        and (p.get("spec") or {}).get("nodeName") == node
        and any(
            o.get("uid") == meta(inst.ds, "uid") or o.get("name") == inst.name
            for o in (p.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
    return owned[0] if owned else None


def _status(pod: Obj, container: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next((s for s in (pod.get("status") or {}).get(key) or [] if s.get("name") == container), {})


def _read_logs(job: Job, client: Any, pod: Obj, container: str, status: dict[str, Any], tail: int = 0) -> None:
    from kubernetes.client import ApiException

    ns, name = meta(pod, "namespace"), meta(pod, "name")
    wanted = [False] + ([True] if status.get("restartCount") else [])
    for previous in wanted:
        try:
            resp: Any = core_api(client).read_namespaced_pod_log(
                name, ns, container=container, previous=previous, tail_lines=tail or job.opts.log_lines,
                _preload_content=False, _request_timeout=job.conn.timeout,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 400:
                continue  # not started yet, or no previous run: nothing to read
            raise
        with job.lock:
            job.logs[(ns, name, container, previous)] = resp.data.decode(errors="replace")


def _read_node(job: Job, client: Any, node: Obj) -> None:
    name = meta(node, "name")
    plans = [capture.plan(i, node) for i in job.installs]
    plan = capture.CapturePlan(
        capture.outermost(t for p in plans for t in p.trees),
        capture.outermost(b for p in plans for b in p.listings),
        tuple(dict.fromkeys(k for p in plans for k in p.known)),
    )
    inst = job.installs[0]
    pod = _pod_on(job.pods, inst, name)
    try:
        if pod is not None:
            with api_errors(job.conn, f"reading logs on {name}"):
                _read_logs(job, client, pod, inst.container_name, _status(pod, inst.container_name))
                spec = pod.get("spec") or {}
                for init in spec.get("initContainers") or []:
                    s = _status(pod, str(init.get("name")), init=True)
                    if s.get("restartCount") or ((s.get("state") or {}).get("terminated") or {}).get("exitCode"):
                        _read_logs(job, client, pod, str(init.get("name")), s)
                    elif "terminated" in (s.get("state") or {}) and hostwrites.may_be_refused(init, spec):
                        # exited 0, yet it may have skipped its work (SELinux): its last lines say so
                        _read_logs(job, client, pod, str(init.get("name")), s, tail=COMPLETED_INIT_TAIL)
        files = _node_files(job, client, inst, pod, node, plan)
        with job.lock:
            job.files[name] = files
    except (NodeAccessError, ClusterError) as exc:
        with job.lock:
            job.errors[name] = str(exc)


def _node_files(
    job: Job, client: Any, inst: Install, pod: Obj | None, node_obj: Obj, plan: capture.CapturePlan
) -> NodeFiles:
    opts, node = job.opts, meta(node_obj, "name")
    running = pod is not None and "running" in (_status(pod, inst.container_name).get("state") or {})
    if running and pod is not None and opts.helpers != "always" and job.may_exec(inst.image):
        spec = pod.get("spec") or {}
        main: Obj = next((c for c in spec.get("containers") or [] if c.get("name") == inst.container_name), {})
        reach = capture.through_mounts(
            MountTable.of(main, spec.get("volumes") or []), f"pod {meta(pod, 'namespace')}/{meta(pod, 'name')}"
        )
        try:
            files = nodefs.capture(
                client,
                meta(pod, "namespace"),
                meta(pod, "name"),
                inst.container_name,
                plan,
                reach,
                timeout=opts.exec_timeout,
            )
            job.probed(inst.image, True)
            return files
        except (ExecRefused, nodefs.ToolMissing) as exc:
            job.probed(inst.image, False if isinstance(exc, nodefs.ToolMissing) else None)
            if opts.helpers == "never" or getattr(exc, "http_status", None) in (401, 403):
                raise  # a helper pod would need the same pods/exec permission
            # A container that went down since we listed it, or an image without tar: read through a helper.
    if opts.helpers == "never":
        raise NodeAccessError(f"node {node}: the Multus pod cannot be read and helper pods are off (--helpers never)")
    ns = opts.helper_namespace or inst.namespace
    known = [
        *(capture.host_paths(inst) if pod is not None else []),
        *plan.known,
        *settled_host_paths(job.daemonsets, node_obj),
    ]
    plan = capture.for_helper(plan)
    manifest = capture.helper_pod(node, ns, opts.helper_image, plan.roots, deadline=opts.helper_deadline, known=known)
    tops = capture.helper_volumes(plan.roots, known)
    with (
        api_errors(job.conn, f"running a helper pod on {node}"),
        helperpod.running(
            job.helpers, client, manifest, start_timeout=opts.start_timeout, image=opts.helper_image
        ) as name,
    ):
        reach = capture.through_helper(f"helper pod {ns}/{name}", tops)
        return nodefs.capture(client, ns, name, "reader", plan, reach, timeout=opts.exec_timeout)


def bounded(fn: Callable[[T], None], items: Iterable[T], workers: int) -> Iterator[tuple[T, None]]:
    """Run `fn` over `items` on at most `workers` daemon threads, yielding each as it finishes.

    Daemon threads, and a main thread that only waits in short slices: Ctrl-C reaches the
    main thread at once, and the process can exit without waiting for a stuck exec."""
    todo: queue.Queue[T] = queue.Queue()
    finished: queue.Queue[tuple[T, BaseException | None]] = queue.Queue()
    pending = list(items)
    for item in pending:
        todo.put(item)

    def worker() -> None:
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                fn(item)
                finished.put((item, None))
            except BaseException as exc:  # handed to the main thread
                finished.put((item, exc))

    for _ in range(max(1, min(workers, len(pending)))):
        threading.Thread(target=worker, daemon=True).start()
    for _ in pending:
        while True:
            try:
                item, exc = finished.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        if exc is not None:
            raise exc
        yield item, None
