"""Apply a fix plan to a live cluster: preflight, back up, write atomically, restart, verify,
and roll back when verification fails (or on Ctrl-C once something was written).

Node files are changed through a short-lived privileged helper pod that mounts read-write only
the directory it changes; their content travels on the exec's stdin, paths as argv items.
ConfigMaps and DaemonSets are changed with JSON patches that test the planned values first.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kubectl_multus.adapters import helperpod, podexec, statedir
from kubectl_multus.adapters.helperpod import core_api
from kubectl_multus.adapters.kubeconn import Connection, new_client
from kubectl_multus.core import capture, patchops
from kubectl_multus.core.diagnose import Report
from kubectl_multus.core.findings import Severity, Target
from kubectl_multus.core.fixplan import FixPlan, TargetPlan, apply_to_daemonset, clean_object
from kubectl_multus.core.install import Install
from kubectl_multus.core.snapshot import Obj, meta
from kubectl_multus.errors import ExitStatus, MultusError, NodeAccessError, Refused


class FixFailed(MultusError):
    """Verification failed; everything written was restored."""

    status = ExitStatus.PROBLEMS


class RollbackFailed(MultusError):
    status = ExitStatus.ROLLBACK_FAILED


@dataclass(frozen=True)
class FixOptions:
    timeout: float = 180.0  # per restart: until the Multus pods are Ready
    helper_image: str = "docker.io/library/busybox:1.36.1"
    helper_namespace: str | None = None
    start_timeout: float = 60.0
    exec_timeout: float = 60.0
    deadline: int = 600


@dataclass
class Done:
    """One target written: how to put it back."""

    item: TargetPlan
    backup: statedir.Backup
    undo: Callable[[], bool]  # True when it had something to put back


@dataclass
class Fixer:
    conn: Connection
    opts: FixOptions
    helpers: helperpod.HelperPods
    say: Callable[[str], None]
    progress: Callable[[str], None] = lambda _: None
    client: Any = None
    done: list[Done] = field(default_factory=list)
    namespace: str = "kube-system"  # Multus's: where helper pods go unless --helper-namespace says otherwise

    def __post_init__(self) -> None:
        self.client = new_client(self.conn)

    def close(self) -> None:
        self.client.close()

    # --- the API, raw JSON ----------------------------------------------------------------
    def _json(self, resp: Any) -> dict[str, Any]:
        return dict(json.loads(resp.data))

    def _kw(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.conn.timeout}

    def _apps(self) -> Any:
        from kubernetes.client import AppsV1Api

        return AppsV1Api(self.client)

    def _api(self, what: str) -> Any:
        from kubectl_multus.adapters.live import api_errors

        return api_errors(self.conn, what)

    # --- preflight -------------------------------------------------------------------------
    def preflight(self, plan: FixPlan, report: Report) -> None:
        """Refuse before any change: permissions, nodes, Pod Security, unchanged content."""
        from kubernetes.client import AuthorizationV1Api

        self.namespace = report.installs[0].install.namespace if report.installs else self.namespace
        needs: set[tuple[str, str, str, str, str]] = set()
        for item in plan.items:
            t = item.target
            if t.kind == "DaemonSet":
                needs |= {("patch", "apps", "daemonsets", "", t.namespace), ("list", "", "pods", "", t.namespace)}
            elif t.kind == "ConfigMap":
                needs |= {
                    ("patch", "", "configmaps", "", t.namespace),
                    ("patch", "apps", "daemonsets", "", t.namespace),
                }
            else:
                ns = self.opts.helper_namespace or t.namespace
                needs |= {
                    ("create", "", "pods", "", ns),
                    ("delete", "", "pods", "", ns),
                    ("get", "", "pods", "exec", ns),
                    ("delete", "", "pods", "", t.namespace),
                }
        review: Any = AuthorizationV1Api(self.client)
        for verb, group, resource, sub, ns in sorted(needs):
            attrs = {"verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns}
            with self._api("checking permissions"):
                answer = self._json(
                    review.create_self_subject_access_review({"spec": {"resourceAttributes": attrs}}, **self._kw())
                )
            if not (answer.get("status") or {}).get("allowed"):
                what = f"{resource}/{sub}" if sub else resource
                raise Refused(
                    f"not allowed to {verb} {what}{'.' + group if group else ''} in namespace {ns}; nothing was changed"
                )
        for item in plan.items:
            if item.target.kind == "NodeFile":
                self._preflight_node(item.target)
        for item in plan.items:
            if self._current(item) != item.before:
                raise Refused(f"{item.target} changed since it was planned; nothing was changed: run fix again")

    def _preflight_node(self, t: Target) -> None:
        from kubernetes.client import ApiException

        try:
            node = self._json(core_api(self.client).read_node(t.node, **self._kw()))
        except ApiException as exc:
            raise Refused(f"node {t.node} not found; nothing was changed") from exc
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (node.get("status") or {}).get("conditions") or []
        )
        if not ready:
            raise Refused(f"node {t.node} is not Ready; nothing was changed")
        manifest = self._writer(t)
        try:
            self.helpers.create(self.client, manifest, dry_run=True)  # Pod Security answers dry-runs too
        except NodeAccessError as exc:
            raise Refused(f"{exc}; nothing was changed") from exc

    def _current_object(self, t: Target) -> dict[str, Any]:
        from kubernetes.client import ApiException

        try:
            if t.kind == "DaemonSet":
                return self._json(self._apps().read_namespaced_daemon_set(t.name, t.namespace, **self._kw()))
            return self._json(core_api(self.client).read_namespaced_config_map(t.name, t.namespace, **self._kw()))
        except ApiException as exc:
            raise Refused(f"{t} is not in this cluster ({exc.status}); nothing was changed") from exc

    def _current(self, item: TargetPlan) -> str | None:
        """The target's content now, rendered as the plan rendered it."""
        from kubectl_multus.core.planner import dump_yaml

        t = item.target
        if t.kind == "DaemonSet":
            with self._api(f"reading DaemonSet {t.namespace}/{t.name}"):
                return dump_yaml(
                    clean_object(self._json(self._apps().read_namespaced_daemon_set(t.name, t.namespace, **self._kw())))
                )
        if t.kind == "ConfigMap":
            with self._api(f"reading ConfigMap {t.namespace}/{t.name}"):
                cm = self._json(core_api(self.client).read_namespaced_config_map(t.name, t.namespace, **self._kw()))
            return (cm.get("data") or {}).get(t.key)
        from kubectl_multus.core.planner import creates

        with self._node_files(t) as files:
            now = files.read_if_there(t.path)
        if now is None:  # missing: what the plan expects only when it puts the file (back) there
            return "" if creates(item) else None
        return now.decode("utf-8", errors="replace")

    # --- node files through a writer pod -------------------------------------------------------
    def _writer(self, t: Target) -> dict[str, Any]:
        ns = self.opts.helper_namespace or t.namespace or self.namespace
        return capture.writer_pod(
            t.node, ns, self.opts.helper_image, posixpath.dirname(t.path), deadline=self.opts.deadline
        )

    @contextmanager
    def _node_files(self, t: Target) -> Iterator[NodeFileOps]:
        manifest = self._writer(t)
        ns = manifest["metadata"]["namespace"]
        with (
            self._api(f"running a helper pod on {t.node}"),
            helperpod.running(
                self.helpers, self.client, manifest, start_timeout=self.opts.start_timeout, image=self.opts.helper_image
            ) as name,
        ):
            yield NodeFileOps(self.client, ns, name, self.opts.exec_timeout)

    # --- applying --------------------------------------------------------------------------------
    def apply(self, plan: FixPlan, report: Report) -> None:
        """Write every target, restart, verify; on failure or Ctrl-C restore what was written."""
        try:
            before = self._pod_uids(plan, report)  # before writing: a DaemonSet patch rolls pods at once
            for item in plan.items:
                self._write(item, report)
                self.say(f"wrote {item.target} (backup: {self.done[-1].backup.folder})")
            self._restart(plan, report, before)
            self.verify(plan, report)
        except BaseException as exc:
            if not self.done:
                raise
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
            self.say(f"restoring what was written: {why}")
            # Interrupted: restore and restart, but do not make the user wait for Ready again.
            self.rollback_all(plan, report, wait=not isinstance(exc, KeyboardInterrupt))
            if isinstance(exc, (KeyboardInterrupt, FixFailed)):
                raise
            raise FixFailed(f"{why}; every change was rolled back") from exc

    def _register(self, item: TargetPlan, backup: statedir.Backup, undo: Callable[[], bool]) -> None:
        """Known to rollback *before* the change is sent: a request that reached the server but
        whose answer was lost still gets undone (each undo first looks at what is there)."""
        self.done.append(Done(item, backup, undo))

    def _write(self, item: TargetPlan, report: Report) -> None:
        from kubectl_multus.core.planner import creates, dump_yaml, removes

        t = item.target
        cluster = statedir.cluster_key(self.conn.context, self.conn.server)
        if t.kind != "DaemonSet" and not removes(item):
            _validate(t, item.after)  # never write a config that does not parse
        if t.kind == "DaemonSet":
            apps = self._apps()
            with self._api(f"reading DaemonSet {t.namespace}/{t.name}"):
                current = self._json(apps.read_namespaced_daemon_set(t.name, t.namespace, **self._kw()))
            if dump_yaml(clean_object(current)) != item.before:
                raise Refused(f"{t} changed since it was planned; run fix again")
            backup = statedir.save(cluster, t, json.dumps(current, indent=2).encode())
            ops = patchops.daemonset_patch(current, apply_to_daemonset(current, item.changes))

            def undo_ds() -> bool:
                with self._api(f"restoring DaemonSet {t.namespace}/{t.name}"):
                    live = self._json(apps.read_namespaced_daemon_set(t.name, t.namespace, **self._kw()))
                    restored = json.loads(json.dumps(live))
                    restored["spec"]["template"] = current["spec"]["template"]
                    back = patchops.daemonset_patch(live, restored)
                    if back:
                        apps.patch_namespaced_daemon_set(t.name, t.namespace, back, **self._kw())
                    return bool(back)

            self._register(item, backup, undo_ds)
            with self._api(f"patching DaemonSet {t.namespace}/{t.name}"):
                apps.patch_namespaced_daemon_set(t.name, t.namespace, ops, **self._kw())
            return
        if t.kind == "ConfigMap":
            core = core_api(self.client)
            with self._api(f"reading ConfigMap {t.namespace}/{t.name}"):
                current = self._json(core.read_namespaced_config_map(t.name, t.namespace, **self._kw()))
            backup = statedir.save(cluster, t, json.dumps(current, indent=2).encode())

            def undo_cm() -> bool:
                with self._api(f"restoring ConfigMap {t.namespace}/{t.name}"):
                    live = self._json(core.read_namespaced_config_map(t.name, t.namespace, **self._kw()))
                    now = (live.get("data") or {}).get(t.key)
                    if now == item.before:
                        return False  # the patch never landed
                    if now != item.after:
                        raise RollbackFailed(f"{t} was changed by someone else meanwhile; not overwriting it")
                    core.patch_namespaced_config_map(
                        t.name, t.namespace, patchops.configmap_patch(t.key, item.after, item.before), **self._kw()
                    )
                    return True

            self._register(item, backup, undo_cm)
            with self._api(f"patching ConfigMap {t.namespace}/{t.name}"):
                core.patch_namespaced_config_map(
                    t.name, t.namespace, patchops.configmap_patch(t.key, item.before, item.after), **self._kw()
                )
            return
        with self._node_files(t) as files:
            original = files.read_if_there(t.path)
            if (original is None and not creates(item)) or (original or b"").decode(
                "utf-8", errors="replace"
            ) != item.before:
                raise Refused(f"{t} changed since it was planned; run fix again")
            if original is None:  # put back where it is missing: undoing it removes it
                backup = statedir.save(cluster, t, b"", absent=True)
            else:
                node_copy = files.backup(t.path, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
                backup = statedir.save(cluster, t, original, node_copy)
            after = None if removes(item) else item.after.encode()

            def undo_file() -> bool:
                with self._node_files(t) as again:
                    now = again.read_if_there(t.path)
                    if now == original:
                        return False  # the change never landed
                    if now not in (after, None):
                        raise RollbackFailed(
                            f"{t} was changed by someone else meanwhile; the original is in {backup.folder}"
                        )
                    if original is None:
                        again.remove(t.path)
                    else:
                        again.write(t.path, original)
                    return True

            self._register(item, backup, undo_file)
            if after is None:
                files.remove(t.path)
            else:
                files.write(t.path, after)

    # --- restarting and waiting ------------------------------------------------------------------
    def _installs(self, report: Report, t: Target) -> list[Install]:
        if t.kind == "NodeFile":  # the install(s) running on that node
            return [i.install for i in report.installs if any(n.name == t.node for n in i.nodes)]
        return [
            i.install
            for i in report.installs
            if i.install.namespace == t.namespace and (t.kind != "DaemonSet" or i.install.name == t.name)
        ]

    def _pod_uids(self, plan: FixPlan, report: Report) -> dict[str, set[str]]:
        return {inst.ref: {meta(p, "uid") for p in self._pods(inst)} for inst in self._affected(plan, report)}

    def _affected(self, plan: FixPlan, report: Report) -> list[Install]:
        return list({id(i): i for item in plan.items for i in self._installs(report, item.target)}.values())

    def _restart(
        self,
        plan: FixPlan,
        report: Report,
        before: dict[str, set[str]] | None = None,
        *,
        wait: bool = True,
        ready: bool = True,
    ) -> None:
        cluster_wide = [i for i in plan.items if i.target.kind in ("DaemonSet", "ConfigMap")]
        for inst in self._affected(plan, report):
            nodes = sorted(n.name for r in report.installs if r.install is inst for n in r.nodes)
            if inst.mode == "thick":
                self.say(
                    "note: while a thick Multus restarts it removes its 00-multus.conf; pods created in that window get no Multus"
                )
            old = {meta(p, "uid"): p for p in self._pods(inst)}
            gone_before = (before or {}).get(inst.ref, set())
            if any(i.target.kind == "ConfigMap" for i in cluster_wide) and not any(
                i.target.kind == "DaemonSet" for i in cluster_wide
            ):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                with self._api(f"restarting DaemonSet {inst.namespace}/{inst.name}"):
                    self._apps().patch_namespaced_daemon_set(
                        inst.name, inst.namespace, patchops.restart_patch(stamp), **self._kw()
                    )
            if not cluster_wide:
                nodes = sorted({i.target.node for i in plan.items if i.target.kind == "NodeFile"})
                for pod in old.values():
                    if (pod.get("spec") or {}).get("nodeName") in nodes:
                        with self._api(f"restarting {meta(pod, 'name')}"):
                            core_api(self.client).delete_namespaced_pod(meta(pod, "name"), inst.namespace, **self._kw())
            if wait:
                self._wait(inst, set(nodes), gone_before if before is not None else set(old), ready=ready)

    def _pods(self, inst: Install) -> list[Obj]:
        labels = ((inst.ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        with self._api(f"listing the pods of {inst.ref}"):
            return list(
                self._json(
                    core_api(self.client).list_namespaced_pod(inst.namespace, label_selector=selector, **self._kw())
                ).get("items")
                or []
            )

    def _wait(self, inst: Install, nodes: set[str], old: set[str], *, ready: bool = True) -> None:
        """Until every node runs a new Multus pod (and, with `ready`, until they are Ready)."""
        deadline = time.monotonic() + self.opts.timeout
        while True:
            pods = [p for p in self._pods(inst) if (p.get("spec") or {}).get("nodeName") in nodes]
            fresh = [p for p in pods if meta(p, "uid") not in old]
            up = [p for p in fresh if _ready(p) or not ready]
            if len(up) == len(nodes) and len(pods) == len(fresh):
                self.progress("")
                if not ready:
                    self.say(
                        "Multus now: "
                        + ", ".join(sorted(f"{(p.get('spec') or {}).get('nodeName')}: {_state(p)}" for p in fresh))
                    )
                return
            self.progress(
                f"waiting for Multus on {len(nodes)} node(s): {len(up)}/{len(nodes)} {'ready' if ready else 'restarted'}"
            )
            if time.monotonic() >= deadline:
                self.progress("")
                states = (
                    ", ".join(sorted(f"{(p.get('spec') or {}).get('nodeName')}: {_state(p)}" for p in pods)) or "no pod"
                )
                raise FixFailed(f"Multus pods not Ready within {self.opts.timeout:.0f}s ({states})")
            time.sleep(0.5)

    # --- verifying -----------------------------------------------------------------------------
    def verify(self, plan: FixPlan, report: Report) -> None:
        """Ready pods, no Multus error in their logs, and a fresh diagnosis that neither plans the
        same change again nor finds a new error on the nodes touched."""
        from kubectl_multus.adapters import live
        from kubectl_multus.core.diagnose import diagnose
        from kubectl_multus.core.planner import build_plan

        files_only = all(i.target.kind == "NodeFile" for i in plan.items)
        nodes = sorted({i.target.node for i in plan.items}) if files_only else [None]
        for node in nodes:
            opts = live.Options(
                node=node, helper_image=self.opts.helper_image, helper_namespace=self.opts.helper_namespace
            )
            snapshot = live.read(self.conn, opts, self.helpers)
            after = diagnose(snapshot)
            touched = {node} if node else {n.name for i in after.installs for n in i.nodes}
            again = [i for i in build_plan(after, snapshot, node).items if i.target in {p.target for p in plan.items}]
            if again:
                raise FixFailed(f"still wrong after the fix: {', '.join(str(i.target) for i in again)}")
            before = {(f.code, f.object, f.field) for f in report.findings}
            new = [
                f
                for f in after.findings
                if f.severity >= Severity.ERROR
                and (not f.nodes or set(f.nodes) & touched)
                and (f.code, f.object, f.field) not in before
            ]
            if new:
                raise FixFailed(f"new problem after the fix: {new[0].code} {new[0].message}")
            down = [
                n.name
                for i in after.installs
                for n in i.nodes
                if n.name in touched and not (n.pod and n.pod.get("ready"))
            ]
            if down:
                raise FixFailed(f"Multus is not Ready on {', '.join(down)} after the fix")

    def restore(self, backup: statedir.Backup, report: Report) -> None:
        """`rollback`: the backup's content back in place, then the same restart and wait."""
        t = backup.target
        original = backup.original
        self.namespace = report.installs[0].install.namespace if report.installs else self.namespace
        if t.kind == "NodeFile":
            self._preflight_node(t)  # refuse before any helper pod: the node must be here and Ready
        else:
            self._current_object(t)
        from kubectl_multus.core.fixplan import TargetPlan

        plan = FixPlan((TargetPlan(t, (), "", "", "", ""),))
        before = self._pod_uids(plan, report)
        cluster = statedir.cluster_key(self.conn.context, self.conn.server)
        if t.kind == "NodeFile":
            with self._node_files(t) as files:
                now = files.read_if_there(t.path)
                if now is not None:  # what is there now is kept too: a rollback can be undone
                    kept = statedir.save(
                        cluster, t, now, files.backup(t.path, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
                    )
                    self.say(f"kept the current {t} in {kept.folder}")
                if backup.absent:  # fix put it there: rolling back removes it
                    files.remove(t.path)
                else:
                    files.write(t.path, original)
        elif t.kind == "ConfigMap":
            old = (json.loads(original).get("data") or {}).get(t.key)
            core = core_api(self.client)
            with self._api(f"restoring ConfigMap {t.namespace}/{t.name}"):
                current = self._json(core.read_namespaced_config_map(t.name, t.namespace, **self._kw()))
                statedir.save(cluster, t, json.dumps(current, indent=2).encode())
                now = (current.get("data") or {}).get(t.key)
                if now != old:
                    core.patch_namespaced_config_map(
                        t.name, t.namespace, patchops.configmap_patch(t.key, now or "", old or ""), **self._kw()
                    )
        else:
            apps = self._apps()
            with self._api(f"restoring DaemonSet {t.namespace}/{t.name}"):
                live = self._json(apps.read_namespaced_daemon_set(t.name, t.namespace, **self._kw()))
                statedir.save(cluster, t, json.dumps(live, indent=2).encode())
                restored = json.loads(json.dumps(live))
                restored["spec"]["template"] = json.loads(original)["spec"]["template"]
                ops = patchops.daemonset_patch(live, restored)
                if ops:
                    apps.patch_namespaced_daemon_set(t.name, t.namespace, ops, **self._kw())
        self.say(f"restored {t} as it was at {backup.created}")
        self._restart(plan, report, before, ready=False)  # what was restored may well be what did not work

    def rollback_all(self, plan: FixPlan, report: Report, *, wait: bool = True) -> None:
        """Undo every registered change, newest first. Ctrl-C and SIGTERM wait until it is done:
        an interrupted rollback would leave exactly the half-changed state it is there to undo."""
        with _signals_deferred():
            try:
                before: dict[str, set[str]] | None = self._pod_uids(FixPlan(tuple(d.item for d in self.done)), report)
            except MultusError:
                before = None
            failed = []
            changed = []
            for done in reversed(self.done):
                try:
                    if done.undo():
                        changed.append(done)
                        self.say(f"restored {done.item.target}")
                    else:
                        self.say(f"{done.item.target} was not changed")
                except Exception as exc:  # keep restoring the others
                    failed.append(
                        f"{done.item.target}: {' '.join(str(exc).split())} (original kept in {done.backup.folder})"
                    )
            if failed:
                raise RollbackFailed("rollback failed for " + "; ".join(failed))
            self.done = []
            if not changed:
                return  # nothing was put back: nothing to restart
            try:
                self._restart(FixPlan(tuple(d.item for d in changed)), report, before, wait=wait)
            except MultusError as exc:
                self.say(f"warning: after restoring, {exc}")


@contextmanager
def _signals_deferred() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            raise KeyboardInterrupt


def _validate(t: Target, text: str) -> None:
    """A CNI or daemon config must be a JSON object (a .conflist with its plugins) before it is written."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise Refused(f"the new content of {t} does not parse ({exc}); nothing was changed") from exc
    if not isinstance(data, dict) or (t.path.endswith(".conflist") and not isinstance(data.get("plugins"), list)):
        raise Refused(f"the new content of {t} is not a valid config; nothing was changed")


def persist(conn: Connection, own: Any, values: dict[str, str]) -> str:
    """Merge `values` into the HelmChartConfig the k3s/RKE2 Helm controller reads (created if missing)."""
    import yaml
    from kubernetes.client import ApiException, CustomObjectsApi

    from kubectl_multus.adapters.live import api_errors
    from kubectl_multus.core.ownership import nested

    client = new_client(conn)
    api: Any = CustomObjectsApi(client)
    args = ("helm.cattle.io", "v1", own.namespace, "helmchartconfigs")
    kw = {"_preload_content": False, "_request_timeout": conn.timeout}
    try:
        with api_errors(conn, f"writing HelmChartConfig {own.namespace}/{own.name}"):
            try:
                current = json.loads(api.get_namespaced_custom_object(*args, own.name, **kw).data)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                current = None
            merged = _merge(
                yaml.safe_load(((current or {}).get("spec") or {}).get("valuesContent") or "") or {}, nested(values)
            )
            body: dict[str, Any] = {"spec": {"valuesContent": yaml.safe_dump(merged, sort_keys=True)}}
            if current is None:
                body = {
                    "apiVersion": "helm.cattle.io/v1",
                    "kind": "HelmChartConfig",
                    "metadata": {"name": own.name, "namespace": own.namespace},
                    **body,
                }
                api.create_namespaced_custom_object(*args, body, **kw)
            else:
                api.patch_namespaced_custom_object(*args, own.name, body, **kw)
    finally:
        client.close()
    return f"HelmChartConfig {own.namespace}/{own.name}"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _state(pod: Obj) -> str:
    for s in (pod.get("status") or {}).get("containerStatuses") or []:
        state = s.get("state") or {}
        if "waiting" in state:
            return str(state["waiting"].get("reason", "waiting"))
        if "running" in state and not s.get("ready"):
            return "Running, not ready"
    return str((pod.get("status") or {}).get("phase", "unknown"))


@dataclass
class NodeFileOps:
    """File operations on a node through the writer pod: argv only, content on stdin."""

    client: Any
    namespace: str
    pod: str
    timeout: float

    def _run(self, *argv: str, stdin: bytes | None = None) -> podexec.Completed:
        done = podexec.run(
            self.client, self.namespace, self.pod, "writer", list(argv), stdin=stdin, timeout=self.timeout
        )
        if done.exit_code != 0:
            raise NodeAccessError(f"{argv[0]} failed on the node: {done.stderr.decode(errors='replace').strip()}")
        return done

    def _path(self, host: str) -> str:
        return capture.HELPER_ROOT + host

    def read(self, host: str) -> bytes:
        return self._run("cat", self._path(host)).stdout

    def read_if_there(self, host: str) -> bytes | None:
        done = podexec.run(
            self.client, self.namespace, self.pod, "writer", ["cat", self._path(host)], timeout=self.timeout
        )
        return done.stdout if done.exit_code == 0 else None

    def backup(self, host: str, stamp: str) -> str:
        copy = f"{host}.kubectl-multus-{stamp}.bak"  # not *.conf: the runtime never loads it
        self._run("cp", "-p", self._path(host), self._path(copy))
        return copy

    def remove(self, host: str) -> None:
        self._run("rm", "-f", self._path(host))

    def write(self, host: str, data: bytes) -> None:
        """Same directory, temporary name, checksum, rename: the file is old or new, never half."""
        target = self._path(host)
        import secrets

        # A name of its own: two runs on one node never share a temporary file.
        tmp = posixpath.join(
            posixpath.dirname(target), f".{posixpath.basename(target)}.kubectl-multus-{secrets.token_hex(4)}.tmp"
        )
        done = podexec.run(
            self.client, self.namespace, self.pod, "writer", ["stat", "-c", "%a", target], timeout=self.timeout
        )
        mode = done.stdout.decode().strip() if done.exit_code == 0 else "644"  # a file being put back: default mode
        self._run("dd", f"of={tmp}", "conv=fsync", stdin=data)  # on disk before the rename
        self._run("chmod", mode, tmp)
        digest = self._run("sha256sum", tmp).stdout.decode().split()[0]
        if digest != hashlib.sha256(data).hexdigest():
            self._run("rm", "-f", tmp)
            raise NodeAccessError(
                f"the copy written on the node does not match (sha256 {digest}); the file was not replaced"
            )
        self._run("mv", "-f", tmp, target)
        self._run("sync")
        if self.read(host) != data:
            raise NodeAccessError(f"{host} does not read back as written")
