"""A whole simulated cluster: the store, a kubelet per node (one object for all), faults, a
request log, and the HTTP server the real `kubernetes` client talks to."""

from __future__ import annotations

import copy
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simcluster import admission, api, patches
from simcluster.admission import Deny
from simcluster.api import ApiError, Kind
from simcluster.process import Clock
from simcluster.store import Obj, Store


@dataclass
class ErrorRule:
    """Answer requests whose method and path match with `code` (at most `times` times)."""

    method: str
    path: str  # a regex searched in the URL path
    code: int = 500
    message: str = "simulated failure"
    times: int | None = None
    body_contains: str | None = None  # only requests whose body holds this text (e.g. '"privileged": true')

    def status(self) -> ApiError:
        reasons = {
            400: "BadRequest",
            403: "Forbidden",
            404: "NotFound",
            409: "Conflict",
            422: "Invalid",
            429: "TooManyRequests",
            503: "ServiceUnavailable",
            504: "Timeout",
        }
        return ApiError(self.code, reasons.get(self.code, "InternalError"), self.message)


@dataclass
class Faults:
    """What a test can switch on. Everything is off by default."""

    latency: float = 0.0  # real seconds added to every request
    errors: list[ErrorRule] = field(default_factory=list)
    deny: list[Deny] = field(default_factory=list)
    helper_never_starts: bool = False  # pods no controller owns stay Pending (image never pulled)
    exec_breaks_after: int | None = None  # bytes of stdout sent before the connection drops
    exec_breaks_on: str | None = None  # only for this command (argv[0]); None: every exec
    exec_broken_ran: bool = True  # False: the broken command never ran (the connection dropped first)
    exec_breaks_times: int | None = None  # break this many execs, then work again (None: always)
    never_ready: set[str] = field(default_factory=set)  # node names whose Multus pods never get Ready ("*": all)
    # container name -> the memory its process reaches once up (a quantity: "53Mi"); a container
    # whose memory limit is lower is killed by the kernel's OOM killer (reason OOMKilled, exit 137)
    memory_use: dict[str, str] = field(default_factory=dict)
    selinux_enforcing: set[str] = field(default_factory=set)  # nodes where confined containers may not write hostPaths


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    verb: str  # list, get, create, update, patch, delete, exec, log, discovery
    resource: str
    namespace: str
    name: str
    code: int
    content_type: str = ""


class Cluster:
    def __init__(self, workdir: Path | None = None, *, clock: Clock | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="simcluster-")) if workdir is None else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store = Store(lambda: Clock.stamp(self.clock.now()))
        self.faults = Faults()
        self.requests: list[Request] = []
        self.read_only: dict[str, set[str]] = {}  # node -> host directories on a read-only filesystem
        self.version = {
            "major": "1",
            "minor": "31",
            "gitVersion": "v1.31.4",
            "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
            "gitTreeState": "clean",
            "buildDate": "2024-12-10T00:00:00Z",
            "goVersion": "go1.22.9",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
        from simcluster.kubelet import Kubelet  # the kubelet needs the finished cluster

        self.kubelet = Kubelet(self)
        self.server: Any = None
        self.kubeconfig: Path | None = None
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.store.create(
                self.ns_kind,
                {"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
            )

    # --- building ------------------------------------------------------------------------
    @property
    def ns_kind(self) -> Kind:
        return self.store.kinds[("", "namespaces")]

    def kind(self, plural: str, group: str = "") -> Kind:
        kind = self.store.kind(group, plural)
        if kind is None:
            raise KeyError(f"{plural}.{group}")
        return kind

    def node_root(self, node: str) -> Path:
        root = self.workdir / "nodes" / node
        if not root.is_dir():
            # What every Linux root filesystem has, whatever the scenario copied in.
            for top in ("etc", "run", "tmp", "usr", "var"):
                (root / top).mkdir(parents=True, exist_ok=True)
        return root

    def mount_read_only(self, node: str, *paths: str) -> None:
        """Make host directories of a node read-only to the container runtime (they must exist)."""
        root = self.node_root(node)
        for path in paths:
            (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self.read_only.setdefault(node, set()).update(paths)

    def add(self, obj: Obj) -> Obj:
        """Add an object as it would be on a live cluster (namespaces and CRDs created as needed)."""
        with self.lock:
            obj = copy.deepcopy(obj)
            obj.pop("status", None) if obj.get("kind") in ("DaemonSet", "Pod") else None
            kind = self.store.kind_of(obj)
            if kind is None:
                custom = next((k for k in api.KNOWN_CUSTOM if k.kind == obj.get("kind")), None)
                if custom is None:
                    raise ValueError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}")
                self.store.create(self.kind("customresourcedefinitions", "apiextensions.k8s.io"), api.crd_for(custom))
                kind = custom
            ns = (obj.get("metadata") or {}).get("namespace")
            if kind.namespaced:
                ns = ns or "default"
                obj["metadata"]["namespace"] = ns
                if self.store.find(self.ns_kind, "", ns) is None:
                    self.store.create(self.ns_kind, {"metadata": {"name": ns}, "status": {"phase": "Active"}})
            if kind.kind == "Node":
                self.node_root(obj["metadata"]["name"])
            created = self.store.create(kind, obj)
            if kind.kind == "Node":
                kubelet = ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")
                if kubelet and not any(True for _ in self.store.list(kind) if _ is not created):
                    self._set_version(kubelet)  # the API server runs the first node's release
                created["status"] = node_status(created, obj.get("status") or {}, self.version["gitVersion"])
            return created

    def load_dump(self, path: Path) -> None:
        """Objects and node files from a dump folder (the layout `--from-dump` reads).

        Pods that a DaemonSet owns are not loaded: this cluster's kubelet starts its own, and
        their logs come from what the simulated Multus does, not from the dump."""
        objects = path / "objects"
        files = (
            sorted(objects.rglob("*"))
            if objects.is_dir()
            else sorted(path.glob("*.y*ml")) + sorted(path.glob("*.json"))
        )
        docs: list[Obj] = []
        for f in files:
            if f.is_file() and f.suffix in (".yaml", ".yml", ".json"):
                for doc in yaml.safe_load_all(f.read_text()):
                    if isinstance(doc, dict):
                        docs.extend(doc.get("items") or []) if doc.get("kind", "").endswith("List") else docs.append(
                            doc
                        )
        order = {"Namespace": 0, "CustomResourceDefinition": 0, "Node": 1}
        for doc in sorted(docs, key=lambda d: order.get(d.get("kind", ""), 2)):
            owners = (doc.get("metadata") or {}).get("ownerReferences") or []
            if doc.get("kind") == "Pod" and any(o.get("kind") == "DaemonSet" for o in owners):
                continue
            self.add(doc)
        nodes = path / "nodes"
        if nodes.is_dir():
            for src in sorted(p for p in nodes.iterdir() if p.is_dir()):
                shutil.copytree(
                    src,
                    self.node_root(src.name),
                    symlinks=True,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".captured", ".unreadable"),
                )

    def _set_version(self, git_version: str) -> None:
        import re as _re

        m = _re.match(r"v(\d+)\.(\d+)", git_version)
        if m:
            self.version.update(major=m.group(1), minor=m.group(2), gitVersion=git_version)

    # --- time ------------------------------------------------------------------------------
    def sync(self) -> None:
        """Bring every controller and pod up to now, even if nothing seems to have changed (a
        test may have written node files directly)."""
        with self.lock:
            self.kubelet.sync(force=True)

    def advance(self, seconds: float) -> None:
        """Let virtual time pass (the kubelet catches up, second by second where it matters)."""
        with self.lock:
            self.clock.advance(seconds)
            self.kubelet.sync(force=True)

    # --- API operations (the server calls these under the lock) ------------------------------
    def check(
        self, method: str, path: str, verb: str, kind: Kind | None, sub: str, ns: str, name: str, body: str = ""
    ) -> None:
        for rule in self.faults.errors:
            if rule.body_contains is not None and rule.body_contains not in body:
                continue
            if rule.method in (method, "*") and re.search(rule.path, path) and rule.times != 0:
                if rule.times is not None:
                    rule.times -= 1
                raise rule.status()
        if kind is not None:
            admission.check_rbac(self.faults.deny, verb, kind, sub, ns, name)

    def get(self, kind: Kind, ns: str, name: str) -> Obj:
        self.kubelet.sync()
        return self.store.get(kind, ns, name)

    def list(self, kind: Kind, ns: str | None) -> list[Obj]:
        self.kubelet.sync()
        return list(self.store.list(kind, ns))

    def create(self, kind: Kind, ns: str, obj: Obj, dry_run: bool) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if kind.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise api.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + self.kubelet.suffix()
        if kind.kind == "Pod":
            self.kubelet.default_pod(obj)
        admission.validate(kind, obj)  # an invalid pod is a 422 before Pod Security looks at it
        if kind.kind == "Pod":
            admission.pod_security(self.store.find(self.ns_kind, "", ns), obj)
        created = self.store.create(kind, obj, dry_run=dry_run)
        if not dry_run:
            self.kubelet.sync()
        return created

    def replace(self, kind: Kind, ns: str, name: str, obj: Obj, dry_run: bool) -> Obj:
        current = self.store.get(kind, ns, name)
        meta = obj.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise api.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = ns
        admission.validate(kind, obj, current)
        done = self.store.replace(kind, obj, dry_run=dry_run)
        if not dry_run:
            self.kubelet.sync()
        return done

    def patch(self, kind: Kind, ns: str, name: str, body: Any, content_type: str, dry_run: bool) -> Obj:
        current = self.store.get(kind, ns, name)
        try:
            patched = patches.apply_patch(current, body, content_type, kind.kind)
        except patches.PatchError as exc:
            raise ApiError(exc.code, exc.reason, str(exc)) from exc
        if not isinstance(patched, dict):
            raise api.bad_request("the patch does not produce an object")
        sent_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if sent_rv not in (None, "", current["metadata"]["resourceVersion"]):
            raise api.conflict(kind, name)
        return self.replace(kind, ns, name, patched, dry_run)

    def delete(self, kind: Kind, ns: str, name: str, dry_run: bool) -> Obj:
        obj = self.store.delete(kind, ns, name, dry_run=dry_run)
        if kind.kind == "Namespace" and not dry_run:
            for other in list(self.store.kinds.values()):
                if other.namespaced:
                    for child in list(self.store.list(other, name)):
                        self.store.delete(other, name, child["metadata"]["name"])
        if not dry_run:
            self.kubelet.sync()
        return obj

    def access_review(self, body: Obj) -> Obj:
        spec = body.get("spec") or {}
        status = admission.access_review(self.faults.deny, spec.get("resourceAttributes") or {})
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": spec,
            "status": status,
        }

    # --- serving -------------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on 127.0.0.1 and an ephemeral port; write a kubeconfig; return the server URL."""
        from simcluster.server import serve

        self.sync()  # controllers and kubelets start with the cluster
        self.server = serve(self)
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig(url)))
        return url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            self.kubelet.stop_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        if self.server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, req: Request) -> None:
        self.requests.append(req)

    def wait_latency(self) -> None:
        if self.faults.latency:
            time.sleep(self.faults.latency)


def node_object(
    name: str,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    kubelet: str = "v1.31.4+k3s1",
) -> Obj:
    """A Ready Linux node as its kubelet registers it (the rest of its status comes from `node_status`)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})},
        },
        "spec": {"taints": taints or []},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": f"10.0.0.{sum(map(ord, name)) % 200 + 2}"}],
            "nodeInfo": {
                "kubeletVersion": kubelet,
                "containerRuntimeVersion": "containerd://1.7.23-k3s2",
                "osImage": "Ubuntu 24.04 LTS",
            },
        },
    }


def node_status(node: Obj, given: Obj, version: str) -> Obj:
    """A node's status as its kubelet reports it: what the scenario gives, the rest filled in
    (clients validate that every required field is there)."""
    name = node["metadata"]["name"]
    info = {
        "architecture": "amd64",
        "bootID": f"boot-{name}",
        "containerRuntimeVersion": "containerd://1.7.23",
        "kernelVersion": "6.8.0-49-generic",
        "kubeProxyVersion": version,
        "kubeletVersion": version,
        "machineID": f"machine-{name}",
        "operatingSystem": "linux",
        "osImage": "Ubuntu 24.04.1 LTS",
        "systemUUID": f"uuid-{name}",
        **(given.get("nodeInfo") or {}),
    }
    addresses = given.get("addresses") or [
        {"type": "InternalIP", "address": f"10.0.0.{sum(map(ord, name)) % 200 + 2}"},
        {"type": "Hostname", "address": name},
    ]
    conditions = given.get("conditions") or [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}
    ]
    capacity = given.get("capacity") or {"cpu": "2", "memory": "4026500Ki", "pods": "110"}
    return {
        **given,
        "nodeInfo": info,
        "addresses": addresses,
        "conditions": conditions,
        "capacity": capacity,
        "allocatable": given.get("allocatable") or capacity,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
    }


def kubeconfig(url: str, context: str = "sim") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": f"{context}-admin", "user": {"token": "sim-token"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-admin"}}],
        "current-context": context,
        "preferences": {},
    }
