"""Read a dump directory into a Snapshot. The layout is documented in docs/dump-format.md.

DIR/objects/**.yaml|.yml|.json    Kubernetes objects, single, `List`, or multi-document
DIR/logs/<ns>/<pod>/<container>.log            current container log
DIR/logs/<ns>/<pod>/<container>.previous.log   log of the previous run
DIR/nodes/<node>/<host path>      copies of node files
DIR/nodes/<node>/.captured        optional: the host dirs that were copied, one per line
DIR/nodes/<node>/.unreadable      optional: why the node's files could not be read
DIR/.captured-at                  optional: when it was captured (ISO 8601 UTC, one line)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubectl_multus.core.attachments import requests_networks
from kubectl_multus.core.snapshot import Entry, NodeFiles, Snapshot
from kubectl_multus.errors import InputError

MAX_TEXT = 256 * 1024
CAPTURED_AT = ".captured-at"
KINDS = {"Node": "nodes", "DaemonSet": "daemonsets", "ConfigMap": "configmaps", "Pod": "pods"}


def _yaml() -> Any:
    import yaml  # imported here: --help must not pay for it

    return yaml


def _documents(path: Path) -> Iterator[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if path.suffix == ".json":
        try:
            yield json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path}: invalid JSON: {exc}") from exc
        return
    yaml = _yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        yield from yaml.load_all(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from exc


def _objects(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _objects(item)
    elif doc.get("kind"):
        yield doc


def _object_files(root: Path) -> list[Path]:
    files = [p for p in root.glob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()]
    objects = root / "objects"
    if objects.is_dir():
        files += [p for p in objects.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()]
    return sorted(files)


def _logs(root: Path) -> dict[tuple[str, str, str, bool], str]:
    logs: dict[tuple[str, str, str, bool], str] = {}
    base = root / "logs"
    if not base.is_dir():
        return logs
    for path in base.glob("*/*/*.log"):
        ns, pod = path.parent.parent.name, path.parent.name
        name = path.name[: -len(".log")]
        previous = name.endswith(".previous")
        container = name[: -len(".previous")] if previous else name
        logs[(ns, pod, container, previous)] = path.read_text(encoding="utf-8", errors="replace")
    return logs


def read_node_files(node_dir: Path) -> NodeFiles:
    """A copy of a node's files, as NodeFiles keyed by host path."""
    entries: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(node_dir, followlinks=False):
        rel = Path(dirpath).relative_to(node_dir)
        host_dir = "/" + str(rel) if str(rel) != "." else "/"
        for name in dirnames + filenames:
            if host_dir == "/" and name.startswith("."):
                continue  # our own markers
            full = Path(dirpath) / name
            host = (host_dir.rstrip("/") + "/" + name) if host_dir != "/" else "/" + name
            if full.is_symlink():
                entries[host] = Entry("link", target=os.readlink(full))
            elif full.is_dir():
                entries[host] = Entry("dir")
            else:
                content = None
                if full.stat().st_size <= MAX_TEXT:
                    try:
                        content = full.read_text(encoding="utf-8")
                    except (UnicodeDecodeError, OSError):
                        content = None
                entries[host] = Entry("file", content)
    captured = node_dir / ".captured"
    roots: tuple[str, ...] = ("/",)
    if captured.is_file():
        roots = tuple(line.strip() for line in captured.read_text().splitlines() if line.strip().startswith("/"))
    return NodeFiles(entries, roots)


def load(path: str) -> Snapshot:
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"cannot read dump {path}: not a directory")
    buckets: dict[str, list[dict[str, Any]]] = {k: [] for k in (*KINDS.values(), "others", "workloads")}
    try:
        for file in _object_files(root):
            for doc in _documents(file):
                for obj in _objects(doc):
                    bucket = KINDS.get(str(obj["kind"]), "others")
                    if bucket == "pods" and requests_networks(obj):
                        bucket = "workloads"  # a pod that asks Multus for networks is not one of Multus's
                    buckets[bucket].append(obj)
        logs = _logs(root)
        node_files: dict[str, NodeFiles] = {}
        node_errors: dict[str, str] = {}
        nodes_dir = root / "nodes"
        if nodes_dir.is_dir():
            for node_dir in sorted(p for p in nodes_dir.iterdir() if p.is_dir()):
                unreadable = node_dir / ".unreadable"
                if unreadable.is_file():
                    node_errors[node_dir.name] = unreadable.read_text().strip() or "unreadable"
                else:
                    node_files[node_dir.name] = read_node_files(node_dir)
        stamp = root / CAPTURED_AT
        captured_at = stamp.read_text(encoding="utf-8", errors="replace").strip() if stamp.is_file() else ""
    except OSError as exc:
        raise InputError(f"cannot read dump {path}: {exc.strerror or exc}: {exc.filename}") from exc
    if not any(buckets.values()):
        raise InputError(f"cannot read dump {path}: no Kubernetes objects in it (see docs/dump-format.md)")
    return Snapshot(
        source=f"dump {path}",
        nodes=tuple(buckets["nodes"]),
        daemonsets=tuple(buckets["daemonsets"]),
        configmaps=tuple(buckets["configmaps"]),
        pods=tuple(buckets["pods"]),
        others=tuple(buckets["others"]),
        logs=logs,
        node_files=node_files,
        node_errors=node_errors,
        captured_at=captured_at,
        workloads=tuple(buckets["workloads"]),
    )
