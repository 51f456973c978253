"""The cluster as plain data: what every source (a dump directory, a live cluster) produces.

Objects are the dicts `kubectl get -o json` prints (camelCase keys). Node files are the
few host files and directories Multus cares about, keyed by host path.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_multus.core.paths import is_under, norm

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Entry:
    """One host path: a directory, a file (content None when binary or too large to keep), or a link."""

    kind: str  # dir | file | link
    content: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class NodeFiles:
    """What is known of one node's filesystem.

    `roots` are the directories that were captured completely: below a root, a path that is
    not in `entries` does not exist. Outside every root nothing is known (`exists` -> None).
    """

    entries: Mapping[str, Entry]
    roots: tuple[str, ...] = ("/",)

    def _follow(self, path: str) -> str:
        path = norm(path)
        for _ in range(16):  # symlink loops end here
            parts = path.split("/")
            for i in range(2, len(parts) + 1):
                prefix = "/".join(parts[:i]) or "/"
                entry = self.entries.get(prefix)
                if entry is not None and entry.kind == "link" and entry.target:
                    target = entry.target
                    if not target.startswith("/"):
                        target = posixpath.join(posixpath.dirname(prefix), target)
                    path = norm(posixpath.join(target, *parts[i:]))
                    break
            else:
                return path
        return path

    def realpath(self, path: str) -> str:
        return self._follow(path)

    def known(self, path: str) -> bool:
        return any(is_under(path, r) for r in self.roots)

    def exists(self, path: str) -> bool | None:
        """True, False, or None when the path lies outside what was captured."""
        real = self._follow(path)
        if real in self.entries or any(p.startswith(real.rstrip("/") + "/") for p in self.entries):
            return True
        return False if self.known(real) else None

    def is_dir(self, path: str) -> bool | None:
        real = self._follow(path)
        entry = self.entries.get(real)
        if entry is not None:
            return entry.kind == "dir"
        return self.exists(real)  # implied by children, else unknown/absent

    def read(self, path: str) -> str | None:
        entry = self.entries.get(self._follow(path))
        return entry.content if entry is not None and entry.kind == "file" else None

    def listdir(self, path: str) -> list[str] | None:
        real = self._follow(path).rstrip("/") or "/"
        if self.exists(real) is not True:
            return None if self.exists(real) is None else []
        prefix = real.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/", 1)[0] for p in self.entries if p.startswith(prefix)}
        return sorted(n for n in names if n)


@dataclass(frozen=True)
class Snapshot:
    """Everything diagnose needs, gathered once.

    `logs` is keyed by (namespace, pod, container, previous). `node_files` holds an entry
    for each node whose files were looked at; `node_errors` says why a node could not be read;
    `captured_at` when it was read. `workloads` are the other pods that ask Multus for networks
    (annotation k8s.v1.cni.cncf.io/networks), kept apart from `pods`, which are Multus's own.
    """

    source: str
    nodes: tuple[Obj, ...] = ()
    daemonsets: tuple[Obj, ...] = ()
    configmaps: tuple[Obj, ...] = ()
    pods: tuple[Obj, ...] = ()
    others: tuple[Obj, ...] = ()
    logs: Mapping[tuple[str, str, str, bool], str] = field(default_factory=dict)
    node_files: Mapping[str, NodeFiles] = field(default_factory=dict)
    node_errors: Mapping[str, str] = field(default_factory=dict)
    # When it was read (ISO 8601 UTC, "2026-12-03T19:40:00Z"; "" unknown): "now" for checks of
    # expiry, so a dump is judged as of its capture, not of the day it is read.
    captured_at: str = ""
    workloads: tuple[Obj, ...] = ()

    def configmap(self, namespace: str, name: str) -> Obj | None:
        for cm in self.configmaps:
            meta = cm.get("metadata") or {}
            if meta.get("name") == name and meta.get("namespace", namespace) == namespace:
                return cm
        return None

    def node(self, name: str) -> Obj | None:
        return next((n for n in self.nodes if (n.get("metadata") or {}).get("name") == name), None)

    def log(self, namespace: str, pod: str, container: str, previous: bool = False) -> str | None:
        return self.logs.get((namespace, pod, container, previous))


def configmap_text(cm: Obj, key: str) -> tuple[str | None, bool]:
    """(text of a ConfigMap key, whether it came from binaryData); (None, False) if absent."""
    text = (cm.get("data") or {}).get(key)
    if text is not None:
        return str(text), False
    binary = (cm.get("binaryData") or {}).get(key)
    if binary is None:
        return None, False
    import base64
    import binascii

    try:
        return base64.b64decode(binary).decode("utf-8"), True
    except (binascii.Error, UnicodeDecodeError):
        return "", True  # then reported as invalid JSON


def meta(obj: Obj, key: str, default: str = "") -> str:
    return str((obj.get("metadata") or {}).get(key) or default)
