"""Local copies of what `fix` replaced, so `rollback` works even when the node's own backup
is gone: one folder per cluster, node and time under the XDG state directory."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kubectl_multus.core.findings import Target
from kubectl_multus.errors import InputError


def cluster_key(context: str, server: str) -> str:
    """Backups belong to a cluster, not to a context name: every k3s kubeconfig calls its
    context `default`. The API server's address tells clusters apart."""
    host = re.sub(r"^[a-z]+://", "", server).rstrip("/")
    return f"{context}@{host}"


def root(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(base) / "kubectl-multus" / "backups"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


@dataclass(frozen=True)
class Backup:
    folder: Path
    cluster: str
    target: Target
    created: str
    node_copy: str  # where the node keeps its own copy ("" for API objects)
    absent: bool = False  # the file was not there: restoring it means removing it

    @property
    def original(self) -> bytes:
        return (self.folder / "original").read_bytes()


def save(
    cluster: str,
    target: Target,
    original: bytes,
    node_copy: str = "",
    base: Path | None = None,
    *,
    absent: bool = False,
) -> Backup:
    try:
        return _save(cluster, target, original, node_copy, base, absent)
    except OSError as exc:
        raise InputError(
            f"cannot keep a local backup in {base or root()}: {exc.strerror or exc}; nothing was changed"
        ) from exc


def _save(cluster: str, target: Target, original: bytes, node_copy: str, base: Path | None, absent: bool) -> Backup:
    created = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    where = target.node or "cluster"
    folder = (base or root()) / _slug(cluster) / _slug(where) / f"{created}-{_slug(str(target))}"
    n = 1
    while folder.exists():
        folder = folder.with_name(f"{folder.name}-{n}")
        n += 1
    folder.mkdir(parents=True, mode=0o700)
    (folder / "original").write_bytes(original)
    meta = {"cluster": cluster, "target": asdict(target), "created": created, "node_copy": node_copy, "absent": absent}
    tmp = folder / ".backup.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(folder / "backup.json")  # written last and whole: a backup.json means a complete backup
    return Backup(folder, cluster, target, created, node_copy, absent)


def listing(cluster: str, base: Path | None = None) -> list[Backup]:
    """Every backup of this cluster, newest first."""
    found = []
    for meta_file in sorted(((base or root()) / _slug(cluster)).glob("*/*/backup.json")):
        try:
            meta = json.loads(meta_file.read_text())
            Target(**meta["target"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a backup this version can restore
        if not (meta_file.parent / "original").is_file():
            continue
        found.append(
            Backup(
                meta_file.parent,
                meta["cluster"],
                Target(**meta["target"]),
                meta["created"],
                meta.get("node_copy", ""),
                bool(meta.get("absent", False)),
            )
        )
    return sorted(found, key=lambda b: (b.created, b.folder.name), reverse=True)
