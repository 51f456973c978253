"""Short-lived helper pods: created, waited for, used, and always deleted.

Every pod this process creates is registered; `HelperPods.close()` (called from the CLI's
`finally`, also on Ctrl-C and SIGTERM) deletes whatever is left, and refuses creations that
race with it. The pod's own `activeDeadlineSeconds` covers the case where we are killed -9.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kubectl_multus.errors import NodeAccessError


def api_message(exc: Any) -> str:
    try:
        body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
        return str(json.loads(body).get("message") or exc.reason)
    except (ValueError, TypeError, AttributeError):
        return str(getattr(exc, "reason", exc))


def core_api(api_client: Any) -> Any:
    from kubernetes.client import CoreV1Api

    return CoreV1Api(api_client)


def creation_error(exc: Any, namespace: str, node: str) -> NodeAccessError:
    message = api_message(exc)
    if exc.status == 403 and "violates PodSecurity" in message:
        return NodeAccessError(
            f"helper pod for node {node} rejected by Pod Security in namespace {namespace} ({message.split(': ', 1)[-1]}); "
            f"use --helper-namespace with a namespace labelled pod-security.kubernetes.io/enforce=privileged"
        )
    if exc.status == 403:
        return NodeAccessError(
            f"not allowed to create the helper pod for node {node} in namespace {namespace}: {message}"
        )
    return NodeAccessError(f"could not create the helper pod for node {node} in namespace {namespace}: {message}")


class HelperPods:
    def __init__(self, new_client: Callable[[], Any], timeout: float | None) -> None:
        self._new_client = new_client
        self._timeout = timeout
        self._lock = threading.Condition()
        self._live: set[tuple[str, str]] = set()
        self.closed = False

    def create(self, api_client: Any, manifest: dict[str, Any], *, dry_run: bool = False) -> str:
        """Create the pod. Its name is chosen here and registered before the request goes out:
        a pod the server created while we were interrupted is still one close() can delete."""
        import secrets

        from kubernetes.client import ApiException

        manifest = json.loads(json.dumps(manifest))
        meta = manifest["metadata"]
        ns, node = meta["namespace"], manifest["spec"]["nodeName"]
        if not meta.get("name"):
            alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's suffix alphabet
            meta["name"] = meta.pop("generateName", "kubectl-multus-") + "".join(
                secrets.choice(alphabet) for _ in range(5)
            )
        name = str(meta["name"])
        with self._lock:
            if self.closed:
                raise NodeAccessError("interrupted")
            if not dry_run:
                self._live.add((ns, name))
        try:
            core_api(api_client).create_namespaced_pod(
                ns, manifest, dry_run="All" if dry_run else None, _preload_content=False, _request_timeout=self._timeout
            )
        except ApiException as exc:
            with self._lock:
                self._live.discard((ns, name))  # refused: there is nothing to delete
            raise creation_error(exc, ns, node) from exc
        if self.closed and not dry_run:
            raise NodeAccessError("interrupted")  # close() deletes it
        return name

    def delete(self, api_client: Any, namespace: str, name: str) -> None:
        from kubernetes.client import ApiException

        try:
            core_api(api_client).delete_namespaced_pod(
                name, namespace, grace_period_seconds=0, _preload_content=False, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        with self._lock:
            self._live.discard((namespace, name))

    def close(self) -> list[str]:
        """Delete every helper pod still registered; returns the ones that could not be deleted."""
        with self._lock:
            self.closed = True
            left = sorted(self._live)
        if not left:
            return []
        failed = []
        client = self._new_client()
        try:
            for ns, name in left:
                try:
                    self.delete(client, ns, name)
                except Exception:  # report, never mask the original error
                    failed.append(f"{ns}/{name}")
        finally:
            client.close()
        return failed

    def wait_running(self, api_client: Any, namespace: str, name: str, node: str, timeout: float, image: str) -> None:
        core = core_api(api_client)
        deadline = time.monotonic() + timeout
        why = "Pending"
        while True:
            pod = json.loads(
                core.read_namespaced_pod(name, namespace, _preload_content=False, _request_timeout=self._timeout).data
            )
            status = pod.get("status") or {}
            phase = status.get("phase", "Pending")
            states = [s.get("state") or {} for s in status.get("containerStatuses") or []]
            if phase == "Running" and states and all("running" in s for s in states):
                return
            if phase in ("Failed", "Succeeded"):
                raise NodeAccessError(
                    f"helper pod {namespace}/{name} on node {node} ended ({phase}: {status.get('reason') or status.get('message') or 'no reason'})"
                )
            waiting = next((s["waiting"] for s in states if "waiting" in s), None)
            if waiting:
                why = f"{waiting.get('reason', '')}: {waiting.get('message', '')}".strip(": ")
            if time.monotonic() >= deadline or self.closed:
                hint = (
                    f"; in an air-gapped cluster pass --helper-image with a mirror of {image}" if "Image" in why else ""
                )
                raise NodeAccessError(
                    f"helper pod {namespace}/{name} on node {node} did not start within {timeout:.0f}s ({why}){hint}"
                )
            time.sleep(0.2)


@contextmanager
def running(
    pods: HelperPods, api_client: Any, manifest: dict[str, Any], *, start_timeout: float, image: str
) -> Iterator[str]:
    """A helper pod from `manifest`, Running, deleted when the block ends however it ends."""
    ns, node = manifest["metadata"]["namespace"], manifest["spec"]["nodeName"]
    name = pods.create(api_client, manifest)
    try:
        pods.wait_running(api_client, ns, name, node, start_timeout, image)
        yield name
    finally:
        with contextlib.suppress(Exception):  # close() retries it; the pod also has its own deadline
            pods.delete(api_client, ns, name)


LABEL = "app.kubernetes.io/managed-by=kubectl-multus"


def remove_leftovers(conn: Any, namespace: str | None) -> list[str]:
    """`kubectl multus cleanup`: delete every pod carrying our label (all namespaces by default)."""
    from kubectl_multus.adapters.kubeconn import new_client
    from kubectl_multus.adapters.live import api_errors

    client = new_client(conn)
    core = core_api(client)
    kw = {"_preload_content": False, "_request_timeout": conn.timeout}
    removed = []
    try:
        with api_errors(conn, "listing helper pods"):
            if namespace:
                resp = core.list_namespaced_pod(namespace, label_selector=LABEL, **kw)
            else:
                resp = core.list_pod_for_all_namespaces(label_selector=LABEL, **kw)
        pods = HelperPods(lambda: client, conn.timeout)
        for pod in json.loads(resp.data).get("items") or []:
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            with api_errors(conn, f"deleting {ns}/{name}"):
                pods.delete(client, ns, name)
            removed.append(f"{ns}/{name}")
    finally:
        client.close()
    return removed
