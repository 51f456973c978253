"""Fix plans as data: apply changes to copies of objects and files, and show them as diffs.

The same apply functions compute the corrected layout during diagnose, so the plan shows
exactly the values diagnose reasoned with.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.findings import Change, Finding, Target

NOISE_METADATA = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")


def _containers(spec: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if c.get("name") == name]


def _set_arg(container: dict[str, Any], flag: str, value: str | None) -> None:
    field = "args" if container.get("args") is not None or not container.get("command") else "command"
    for key in ("args", "command"):
        words = container.get(key) or []
        for i, word in enumerate(words):
            if word.startswith(flag + "="):
                if value is None:
                    del words[i]
                else:
                    words[i] = f"{flag}={value}"
                return
            if word == flag and i + 1 < len(words):
                if value is None:
                    del words[i : i + 2]
                else:
                    words[i + 1] = value
                return
    if value is not None:
        container.setdefault(field, []).append(f"{flag}={value}")


# Container fields whose values are booleans in the API: a "true" in a change becomes true.
BOOLEAN_FIELDS = frozenset({"securityContext.privileged", "securityContext.allowPrivilegeEscalation"})


def _set_field(container: dict[str, Any], path: list[str], value: str | None) -> None:
    """Set (None: remove) a nested field of a container, e.g. resources.limits.memory."""
    node = container
    for part in path[:-1]:
        if value is None and not isinstance(node.get(part), dict):
            return
        node = node.setdefault(part, {})
    if value is None:
        node.pop(path[-1], None)
    elif ".".join(path) in BOOLEAN_FIELDS and value in ("true", "false"):
        node[path[-1]] = value == "true"
    else:
        node[path[-1]] = value


def apply_to_daemonset(ds: Mapping[str, Any], changes: Iterable[Change]) -> dict[str, Any]:
    """A copy of the DaemonSet with the `ds.*` changes made."""
    out: dict[str, Any] = copy.deepcopy(dict(ds))
    spec = out.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
    for ch in changes:
        parts = ch.key.split(".")
        if parts[:2] == ["ds", "arg"]:
            for c in _containers(spec, ch.container):
                _set_arg(c, ".".join(parts[2:]), ch.value)
        elif parts[:2] == ["ds", "volume"] and parts[-1] == "hostPath":
            name = ".".join(parts[2:-1])
            for v in spec.get("volumes") or []:
                if v.get("name") == name:
                    v["hostPath"] = {**(v.get("hostPath") or {}), "path": ch.value}
        elif parts[:2] == ["ds", "mount"] and parts[-1] == "mountPath":
            name = ".".join(parts[2:-1])
            for c in _containers(spec, ch.container):
                for m in c.get("volumeMounts") or []:
                    if m.get("name") == name:
                        m["mountPath"] = ch.value
        elif parts[:2] in (["ds", "container"], ["ds", "initContainer"]) and len(parts) > 3:
            # ds.initContainer.<name>.resources.limits.memory: container names hold no dots
            key = "initContainers" if parts[1] == "initContainer" else "containers"
            for c in spec.get(key) or []:
                if c.get("name") == parts[2]:
                    _set_field(c, parts[3:], ch.value)
        elif ch.key == "ds.image":
            for c in _containers(spec, ch.container):
                c["image"] = ch.value
    return out


def _indent(text: str) -> int | None:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and stripped[0] in '"}':
            return len(line) - len(stripped) or None
    return None


# daemon-config.json keys that are booleans: a "true" from a command-line flag becomes true.
BOOLEAN_KEYS = frozenset({"logToStderr", "namespaceIsolation", "forceCNIVersion", "overrideNetworkName"})


def apply_to_json(text: str, changes: Iterable[Change]) -> str:
    """Set or remove top-level keys (`daemon_config.<key>`) keeping the file's indentation."""
    data = json.loads(text)
    for ch in changes:
        key = ch.key.split(".", 1)[1]
        if ch.value is None:
            data.pop(key, None)
        elif key in BOOLEAN_KEYS and ch.value in ("true", "false"):
            data[key] = ch.value == "true"
        else:
            data[key] = ch.value
    indent = _indent(text)
    out = json.dumps(data, indent=indent if indent is not None else 2)
    return out + "\n" if text.endswith("\n") or not text else out


def clean_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as a person wants to read it in a diff: no status, no server bookkeeping."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in NOISE_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    annotations.pop("deprecated.daemonset.template.generation", None)
    if "annotations" in meta and not annotations:
        meta.pop("annotations")
    return out


def unified_diff(before: str, after: str, label: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{label}", f"b/{label}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True)
class TargetPlan:
    target: Target
    changes: tuple[Change, ...]
    before: str
    after: str
    diff: str
    restart: str


@dataclass(frozen=True)
class FixPlan:
    items: tuple[TargetPlan, ...]
    conflicts: tuple[str, ...] = ()  # changes that cannot be made together (e.g. nodes of two distributions)
    manual: tuple[str, ...] = ()  # findings with no automatic fix
    held_back: tuple[str, ...] = ()  # cluster-wide changes left out by --node

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(ch for item in self.items for ch in item.changes)


def collect_changes(findings: Iterable[Finding]) -> tuple[dict[Target, list[Change]], list[str]]:
    """Changes by target, first come first kept; disagreeing values become conflicts and are dropped."""
    seen: dict[tuple[Target, str, str], Change] = {}
    conflicting: set[tuple[Target, str, str]] = set()
    conflicts: list[str] = []
    for f in findings:
        for ch in f.changes:
            ident = (ch.target, ch.key, ch.container)
            other = seen.setdefault(ident, ch)
            if other.value != ch.value and ident not in conflicting:
                conflicting.add(ident)
                conflicts.append(
                    f"{ch.target} {ch.key}: nodes need different values ({other.value!r} and {ch.value!r}); "
                    "one DaemonSet cannot serve both, split it per node pool"
                )
    by_target: dict[Target, list[Change]] = {}
    for ident, ch in seen.items():
        if ident not in conflicting:
            by_target.setdefault(ident[0], []).append(ch)
    return by_target, conflicts
