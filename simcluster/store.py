"""Objects by kind, namespace and name, with the metadata bookkeeping a real API server does."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from simcluster import api
from simcluster.api import Kind

Obj = dict[str, Any]
# (event, kind, object): "ADDED" | "MODIFIED" | "DELETED", called after the change.
Listener = Callable[[str, Kind, Obj], None]


class Store:
    def __init__(self, now: Callable[[], str]) -> None:
        self._now = now
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._rv = 1000
        self.kinds: dict[tuple[str, str], Kind] = {}  # (group, plural) -> kind
        self.listeners: list[Listener] = []
        for kind in api.BUILTIN:
            self.kinds[(kind.group, kind.plural)] = kind

    # --- kinds --------------------------------------------------------------------------
    def kind(self, group: str, plural: str) -> Kind | None:
        return self.kinds.get((group, plural))

    def kind_of(self, obj: Obj) -> Kind | None:
        group, _, _ = str(obj.get("apiVersion", "")).rpartition("/")
        for kind in self.kinds.values():
            if kind.group == group and kind.kind == obj.get("kind"):
                return kind
        return None

    def _serve_crd(self, crd: Obj, served: bool) -> None:
        kind = api.kind_from_crd(crd)
        if served:
            self.kinds[(kind.group, kind.plural)] = kind
        else:
            self.kinds.pop((kind.group, kind.plural), None)

    # --- reads ----------------------------------------------------------------------------
    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        obj = self._objects.get((kind.resource, namespace if kind.namespaced else "", name))
        if obj is None:
            raise api.not_found(kind, name)
        return obj

    def find(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        return self._objects.get((kind.resource, namespace if kind.namespaced else "", name))

    def list(self, kind: Kind, namespace: str | None = None) -> Iterator[Obj]:
        for (resource, ns, _), obj in sorted(self._objects.items()):
            if resource == kind.resource and (namespace is None or ns == namespace):
                yield obj

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    # --- writes ---------------------------------------------------------------------------
    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def create(self, kind: Kind, obj: Obj, *, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name", "")
        ns = meta.get("namespace", "") if kind.namespaced else ""
        if kind.namespaced:
            meta["namespace"] = ns
            if self.find(self.kinds[("", "namespaces")], "", ns) is None:
                raise api.not_found(self.kinds[("", "namespaces")], ns)
        if (kind.resource, ns, name) in self._objects:
            raise api.already_exists(kind, name)
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        meta["uid"] = str(uuid.uuid4())  # the server's, never the client's
        meta.setdefault("creationTimestamp", self._now())
        if "spec" in obj and kind.kind in ("DaemonSet", "Deployment"):
            meta["generation"] = 1
        if dry_run:
            return obj
        meta["resourceVersion"] = self._bump()
        self._objects[(kind.resource, ns, name)] = obj
        if kind.kind == "CustomResourceDefinition":
            self._serve_crd(obj, True)
        self._notify("ADDED", kind, obj)
        return obj

    def replace(self, kind: Kind, obj: Obj, *, dry_run: bool = False, check_version: bool = True) -> Obj:
        """Store `obj` over the current one (PUT): a stale resourceVersion is a conflict."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        current = self.get(kind, meta.get("namespace", ""), meta.get("name", ""))
        cur_meta = current["metadata"]
        if check_version and meta.get("resourceVersion") not in (None, "", cur_meta["resourceVersion"]):
            raise api.conflict(kind, cur_meta["name"])
        for key in ("uid", "creationTimestamp", "namespace", "generation"):
            if key in cur_meta:
                meta[key] = cur_meta[key]
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        if "generation" in cur_meta and _canon(obj.get("spec")) != _canon(current.get("spec")):
            meta["generation"] = cur_meta["generation"] + 1
        if "status" in current and "status" not in obj:
            obj["status"] = current["status"]
        if dry_run:
            return obj
        meta["resourceVersion"] = self._bump()
        self._objects[(kind.resource, meta.get("namespace", "") if kind.namespaced else "", meta["name"])] = obj
        self._notify("MODIFIED", kind, obj)
        return obj

    def set_status(self, kind: Kind, obj: Obj, status: Obj) -> None:
        """Controllers write status in place: no event, so they never wake themselves."""
        if obj.get("status") != status:
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self._bump()

    def delete(self, kind: Kind, namespace: str, name: str, *, dry_run: bool = False) -> Obj:
        obj = self.get(kind, namespace, name)
        if dry_run:
            return obj
        del self._objects[(kind.resource, namespace if kind.namespaced else "", name)]
        self._bump()
        if kind.kind == "CustomResourceDefinition":
            self._serve_crd(obj, False)
        self._notify("DELETED", kind, obj)
        return obj

    def _notify(self, event: str, kind: Kind, obj: Obj) -> None:
        for listener in list(self.listeners):
            listener(event, kind, obj)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
