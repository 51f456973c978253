"""Write a Snapshot as a dump directory: the layout `dumpdir.load` reads (docs/dump-format.md).

DIR/README.txt                    what this is, what was removed
DIR/objects/<kind>s.yaml          nodes, daemonsets, configmaps, pods, others, workloads: a v1 List each (empty ones left out)
DIR/logs/<ns>/<pod>/<container>[.previous].log
DIR/nodes/<node>/<host path>      files (content None -> empty file), dirs, symlinks (target as recorded)
DIR/nodes/<node>/.captured        the roots, one per line
DIR/nodes/<node>/.unreadable      why the node's files could not be read (then no files)

Secrets are always stripped first (`core.redact.strip_secrets`); `redact=True` also replaces node
names and addresses. Everything is checked before the first byte is written, so a refused
snapshot leaves nothing behind, and nothing is written outside DIR: host paths with `..`, names
that are not one path segment, and entries below a symlink are refused; symlinks are created
last and never followed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubectl_multus import __version__
from kubectl_multus.adapters.dumpdir import CAPTURED_AT
from kubectl_multus.core.paths import norm
from kubectl_multus.core.redact import REDACTED, redact_identities, strip_secrets
from kubectl_multus.core.snapshot import Entry, NodeFiles, Obj, Snapshot
from kubectl_multus.errors import InputError

MARKERS = (".captured", ".unreadable")
# bucket -> the kind and apiVersion an item without them gets (list items from the API lack both)
BUCKETS = {
    "nodes": ("Node", "v1"),
    "daemonsets": ("DaemonSet", "apps/v1"),
    "configmaps": ("ConfigMap", "v1"),
    "pods": ("Pod", "v1"),
    "others": ("", ""),
    "workloads": ("Pod", "v1"),  # pods asking Multus for networks; read back by their annotation
}

README = """\
kubectl-multus dump
===================

A snapshot of a Multus CNI install, written by `kubectl multus dump` (kubectl-multus {version}).
Diagnose it anywhere, without the cluster:

    kubectl multus diagnose --from-dump <this directory>
    kubectl multus fix --dry-run --from-dump <this directory>

objects/   Kubernetes objects (Nodes, DaemonSets, ConfigMaps, Multus's Pods, others, and the
           workload Pods that ask for networks), a v1 List per file
logs/      container logs: logs/<namespace>/<pod>/<container>[.previous].log
nodes/     copies of each node's CNI files at their host paths; .captured lists the host
           directories that were copied whole, .unreadable says why a node could not be read
The layout is docs/dump-format.md in the kubectl-multus repository.

Secrets were removed before writing: Secret objects are left out; tokens, passwords, client keys
and client certificates in kubeconfigs (a CA certificate is public and stays), PEM private keys, service-account tokens (JWTs) and env values
named *TOKEN*, *PASSWORD*, *SECRET* or *KEY* are replaced by {redacted} (a JWT with an exp claim by an
unsigned stand-in holding only that claim, for the expiry check); last-applied-configuration
annotations are dropped. Binaries are empty files: only their names matter.
{identities}"""
IDENTITIES_REDACTED = """\
Identities were redacted (--redact): node names are node-1, node-2 ..., IP addresses 10.255.0.x
and fd00::x, the same everywhere. Host paths, loopback addresses and CIDRs are as they were.
"""
IDENTITIES_KEPT = """\
Node names and IP addresses are as in the cluster; `kubectl multus dump --redact` replaces them.
"""


@dataclass(frozen=True)
class _Op:
    """One thing to create, relative to the dump directory."""

    path: str  # POSIX, relative
    kind: str  # file | dir | link
    data: bytes = b""
    target: str = ""


def _yaml() -> Any:
    import yaml  # imported here: --help must not pay for it

    return yaml


@functools.lru_cache(maxsize=1)
def _dumper() -> Any:
    yaml = _yaml()

    class Dumper(yaml.SafeDumper):  # type: ignore[misc,name-defined]
        """SafeDumper without anchors (a dump is read by people) and with multi-line strings as blocks."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: Any, data: str) -> Any:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def _plain(value: Any) -> Any:
    """Mappings and tuples as the dict and list YAML can represent."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _as_list(objs: Iterable[Obj], kind: str, api_version: str) -> bytes:
    items = []
    for obj in objs:
        item = _plain(obj)
        if kind and not item.get("kind"):
            item = {"apiVersion": item.get("apiVersion") or api_version, "kind": kind, **item}
        items.append(item)
    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    text = _yaml().dump(doc, Dumper=_dumper(), sort_keys=False, default_flow_style=False, allow_unicode=True)
    return str(text).encode("utf-8")


def _segment(name: str, what: str) -> str:
    """`name` as one path segment, or InputError."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise InputError(f"cannot write dump: {what} {name!r} is not a usable file name")
    return name


def _host_path(path: str, node: str) -> str:
    """A host path as a relative path below nodes/<node>/, or InputError if it could leave it."""
    if not path.startswith("/") or "\0" in path or ".." in path.split("/"):
        raise InputError(f"cannot write dump: node {node}: host path {path!r} is not absolute or leaves /")
    rel = norm(path).lstrip("/")
    if rel.split("/", 1)[0] in MARKERS:
        raise InputError(f"cannot write dump: node {node}: host path {path} would overwrite the dump's own {rel}")
    return rel


def _node_ops(name: str, files: NodeFiles) -> list[_Op]:
    base = f"nodes/{_segment(name, 'node name')}"
    entries: dict[str, Entry] = {}
    for path, entry in files.entries.items():
        rel = _host_path(path, name)
        if not rel:
            continue  # "/" itself is nodes/<node>/
        if entries.setdefault(rel, entry) != entry:
            raise InputError(f"cannot write dump: node {name}: two different entries for host path /{rel}")
    ops = [_Op(base, "dir")]
    for rel, entry in sorted(entries.items()):
        parts = rel.split("/")
        for i in range(1, len(parts)):
            above = entries.get("/".join(parts[:i]))
            if above is not None and above.kind != "dir":
                raise InputError(
                    f"cannot write dump: node {name}: /{rel} lies below the {above.kind} /{'/'.join(parts[:i])}"
                )
        if entry.kind == "dir":
            ops.append(_Op(f"{base}/{rel}", "dir"))
        elif entry.kind == "file":
            ops.append(_Op(f"{base}/{rel}", "file", (entry.content or "").encode("utf-8")))
        elif entry.kind == "link" and entry.target and "\0" not in entry.target:
            ops.append(_Op(f"{base}/{rel}", "link", target=entry.target))
        else:
            raise InputError(f"cannot write dump: node {name}: /{rel} is a {entry.kind} without a usable target")
    for root in files.roots:
        if not root.startswith("/") or "\n" in root:
            raise InputError(f"cannot write dump: node {name}: captured root {root!r} is not an absolute path")
    ops.append(_Op(f"{base}/.captured", "file", "".join(f"{r}\n" for r in files.roots).encode("utf-8")))
    return ops


def _plan(snapshot: Snapshot, redacted: bool) -> list[_Op]:
    identities = IDENTITIES_REDACTED if redacted else IDENTITIES_KEPT
    readme = README.format(version=__version__, redacted=REDACTED, identities=identities)
    ops = [_Op("README.txt", "file", readme.encode("utf-8"))]
    for bucket, (kind, api_version) in BUCKETS.items():
        objs: tuple[Obj, ...] = getattr(snapshot, bucket)
        if objs:
            ops.append(_Op(f"objects/{bucket}.yaml", "file", _as_list(objs, kind, api_version)))
    if snapshot.captured_at and "\n" not in snapshot.captured_at:
        ops.append(_Op(CAPTURED_AT, "file", f"{snapshot.captured_at}\n".encode()))
    for (ns, pod, container, previous), text in sorted(snapshot.logs.items()):
        if container.endswith(".previous"):
            raise InputError(f"cannot write dump: container name {container!r} would read back as a previous log")
        name = f"{_segment(container, 'container name')}{'.previous' if previous else ''}.log"
        path = f"logs/{_segment(ns, 'namespace')}/{_segment(pod, 'pod name')}/{name}"
        ops.append(_Op(path, "file", text.encode("utf-8")))
    for name, files in sorted(snapshot.node_files.items()):
        if name not in snapshot.node_errors:  # as the reader: .unreadable wins
            ops += _node_ops(name, files)
    for name, why in sorted(snapshot.node_errors.items()):
        base = f"nodes/{_segment(name, 'node name')}"
        ops += [_Op(base, "dir"), _Op(f"{base}/.unreadable", "file", f"{why.strip() or 'unreadable'}\n".encode())]
    return ops


def _inside(root: Path, rel: str) -> Path:
    path = root / rel
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path.parent)]) != real_root:
        raise InputError(f"cannot write dump: {rel} would be written outside {root}")
    return path


def _write_file(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def write(snapshot: Snapshot, directory: Path, *, redact: bool = False) -> list[Path]:
    """Write `snapshot`, secrets stripped (and identities replaced with `redact`), as a dump in
    `directory`, which must be absent or empty. Returns the files and symlinks written."""
    root = Path(directory)
    if root.exists() or root.is_symlink():
        if not root.is_dir():
            raise InputError(f"cannot write dump {root}: exists and is not a directory")
        if any(root.iterdir()):
            raise InputError(f"cannot write dump {root}: directory is not empty")
    snapshot = strip_secrets(snapshot)
    if redact:
        snapshot = redact_identities(snapshot)
    ops = _plan(snapshot, redact)
    written: list[Path] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        for op in ops:  # symlinks last: no later write can pass through one
            if op.kind == "dir":
                _inside(root, op.path).mkdir(parents=True, exist_ok=True)
            elif op.kind == "file":
                path = _inside(root, op.path)
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_file(_inside(root, op.path), op.data)
                written.append(path)
        for op in ops:
            if op.kind == "link":
                path = _inside(root, op.path)
                path.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(op.target, _inside(root, op.path))
                written.append(path)
    except OSError as exc:
        raise InputError(f"cannot write dump {root}: {exc.strerror or exc}: {exc.filename}") from exc
    return written
