"""Container paths, host paths, and the mount table that maps one onto the other.

A Multus container sees the node only through its volumes: a hostPath volume
`/var/lib/rancher/k3s/agent/etc/cni/net.d` mounted at `/host/etc/cni/net.d` makes the
container path `/host/etc/cni/net.d/00-multus.conf` the host path
`/var/lib/rancher/k3s/agent/etc/cni/net.d/00-multus.conf`. Everything here is pure.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Prefixes Multus manifests put in front of host paths inside the container.
POD_PREFIXES = ("/host", "/hostroot")


def norm(path: str) -> str:
    """`/etc/cni/net.d/` and `/etc//cni/./net.d` both become `/etc/cni/net.d`."""
    if not path:
        return path
    out = posixpath.normpath(path)
    return (
        "/" + out.lstrip("/") if out.startswith("//") else out
    )  # POSIX keeps a leading "//"; paths here never mean it


def is_under(path: str, root: str) -> bool:
    """True when `path` is `root` or below it, compared by whole segments."""
    path, root = norm(path), norm(root)
    return root == "/" or path == root or path.startswith(root + "/")


def rebase(path: str, old_root: str, new_root: str) -> str:
    """Move `path` from below `old_root` to below `new_root`."""
    rest = norm(path)[len(norm(old_root)) :] if norm(old_root) != "/" else norm(path)
    return norm(new_root.rstrip("/") + "/" + rest.lstrip("/")) if rest.strip("/") else norm(new_root)


def repeated_run(path: str) -> str | None:
    """The run of segments that `undouble` removes: `/var/lib/rancher/k3s/agent`."""
    fixed = undouble(path)
    if fixed is None:
        return None
    segs, kept = norm(path).split("/"), fixed.split("/")
    i = next((i for i, (a, b) in enumerate(zip(segs, kept, strict=False)) if a != b), len(kept))
    return "/" + "/".join(segs[i : i + len(segs) - len(kept)])


def undouble(path: str) -> str | None:
    """The path with a repeated run of two or more segments removed, or None if there is none.

    `/host/var/lib/rancher/k3s/agent/var/lib/rancher/k3s/agent/etc/cni/net.d`
    -> `/host/var/lib/rancher/k3s/agent/etc/cni/net.d`; `/host/host/etc` -> `/host/etc`.
    """
    segs = [s for s in norm(path).split("/") if s]
    for size in range(len(segs) // 2, 0, -1):
        for start in range(0, len(segs) - 2 * size + 1):
            run = segs[start : start + size]
            if run == segs[start + size : start + 2 * size]:
                if size == 1 and run[0] not in ("host", "hostroot"):
                    continue  # a single repeated segment such as bin/bin is too weak a signal
                fixed = segs[: start + size] + segs[start + 2 * size :]
                return "/" + "/".join(fixed)
    return None


@dataclass(frozen=True)
class Volume:
    """A pod volume reduced to what path resolution needs."""

    name: str
    kind: str  # hostPath | configMap | secret | emptyDir | projected | other
    host_path: str | None = None
    config_map: str | None = None
    items: tuple[tuple[str, str], ...] = ()  # (key, path) pairs of a configMap volume

    @staticmethod
    def from_spec(spec: Mapping[str, Any]) -> Volume:
        name = str(spec.get("name", ""))
        if "hostPath" in spec:
            path = (spec["hostPath"] or {}).get("path")
            return Volume(name, "hostPath", host_path=norm(str(path))) if path else Volume(name, "other")
        if "configMap" in spec:
            cm = spec["configMap"] or {}
            items = tuple((str(i.get("key")), str(i.get("path"))) for i in cm.get("items") or [])
            return Volume(name, "configMap", config_map=str(cm.get("name", "")), items=items)
        for kind in ("secret", "emptyDir", "projected"):
            if kind in spec:
                return Volume(name, kind)
        return Volume(name, "other")


@dataclass(frozen=True)
class Mount:
    volume: Volume
    mount_path: str
    sub_path: str = ""
    read_only: bool = False


@dataclass(frozen=True)
class Location:
    """Where a container path really lives.

    kind: `host` (a host path), `configMap` (a key of a ConfigMap), `ephemeral`
    (emptyDir, secret, projected: gone with the pod) or `container` (the image's
    own filesystem: the host never sees it). `mount` is None only for `container`.
    """

    kind: str
    host_path: str | None = None
    config_map: str | None = None
    key: str | None = None
    mount: Mount | None = None


@dataclass(frozen=True)
class MountTable:
    """The volume mounts of one container, with its pod's volumes."""

    mounts: tuple[Mount, ...]

    @staticmethod
    def of(container: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]]) -> MountTable:
        by_name = {v.name: v for v in (Volume.from_spec(s) for s in volumes)}
        mounts = []
        for m in container.get("volumeMounts") or []:
            vol = by_name.get(str(m.get("name")), Volume(str(m.get("name")), "missing"))
            mounts.append(
                Mount(vol, norm(str(m.get("mountPath", ""))), str(m.get("subPath") or ""), bool(m.get("readOnly")))
            )
        return MountTable(tuple(mounts))

    def mount_for(self, path: str) -> Mount | None:
        """The mount a container path falls under: the longest matching mountPath wins."""
        best: Mount | None = None
        for m in self.mounts:
            if is_under(path, m.mount_path) and (best is None or len(m.mount_path) > len(best.mount_path)):
                best = m
        return best

    def resolve(self, path: str) -> Location:
        """Container path -> where it lives. `/host/etc/cni/net.d` -> host `/etc/cni/net.d`."""
        path = norm(path)
        m = self.mount_for(path)
        if m is None:
            return Location("container")
        rest = path[len(m.mount_path) :].lstrip("/") if m.mount_path != "/" else path.lstrip("/")
        vol = m.volume
        if vol.kind == "hostPath" and vol.host_path is not None:
            base = posixpath.join(vol.host_path, m.sub_path) if m.sub_path else vol.host_path
            return Location("host", host_path=norm(posixpath.join(base, rest)) if rest else norm(base), mount=m)
        if vol.kind == "configMap":
            name = m.sub_path if m.sub_path else rest
            key = next((k for k, p in vol.items if p == name), None) if vol.items else (name or None)
            return Location("configMap", config_map=vol.config_map, key=key, mount=m)
        return Location("ephemeral", mount=m)

    def host_path(self, path: str) -> str | None:
        loc = self.resolve(path)
        return loc.host_path if loc.kind == "host" else None

    def to_container(self, host_path: str, *, writable: bool = False, via_root: bool = True) -> str | None:
        """Host path -> the container path that reaches it, or None.

        The most specific hostPath wins (`/etc/cni/net.d` mounted at `/host/etc/cni/net.d`
        beats `/` mounted at `/hostroot`), so the answer is the one a manifest author would write.
        `via_root=False` ignores a mount of the host's `/`, which reaches everything but is
        no place to point Multus's own directories at.
        """
        best: tuple[int, str] | None = None
        for m in self.mounts:
            vol = m.volume
            if vol.kind != "hostPath" or vol.host_path is None or (writable and m.read_only):
                continue
            if not via_root and vol.host_path == "/" and not m.sub_path:
                continue
            source = norm(posixpath.join(vol.host_path, m.sub_path)) if m.sub_path else vol.host_path
            if is_under(host_path, source):
                candidate = rebase(host_path, source, m.mount_path)
                if best is None or len(source) > best[0]:
                    best = (len(source), candidate)
        return best[1] if best else None

    def by_volume(self, name: str) -> list[Mount]:
        return [m for m in self.mounts if m.volume.name == name]


def strip_pod_prefix(path: str, extra: Iterable[str] = ()) -> str | None:
    """`/host/var/lib/x` -> `/var/lib/x`; None when the path carries no pod prefix."""
    for prefix in (*POD_PREFIXES, *extra):
        if prefix != "/" and is_under(path, prefix) and norm(path) != norm(prefix):
            return norm(path)[len(norm(prefix)) :]
    return None
