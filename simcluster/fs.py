"""A container's view of a node's files: mounts over a root, resolved the way the kernel does.

Every path handed to this module is a path *inside* the container. It is resolved one
component at a time in container space: the deepest mount whose mount path holds the
component decides which real directory backs it, and a symlink's target is read back into
container space (an absolute target is resolved from the container's root, not the host's,
which is why a symlink on the host can dangle inside a pod). Nothing here ever touches a
real path outside the mount sources and the container's own root directory.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat as stat_mod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_SYMLINKS = 40
# Bumped by every change made through a ContainerFS: the kubelet skips a sync when neither
# time, nor the API objects, nor any file has changed since the last one.
WRITES = [0]


def _wrote(fs: ContainerFS | None = None, path: str = "") -> None:
    """Count a change, unless it only touches the container's own layer (mount points made at
    start, a helper's scratch files): nothing else can see those."""
    if fs is not None and path:
        try:
            if fs.resolve(path, follow=False).mount is None:
                return
        except OSError:
            pass
    WRITES[0] += 1


@dataclass(frozen=True)
class Mount:
    """`source` (a real directory or file) seen at `path` inside the container."""

    path: str
    source: Path
    read_only: bool = False
    # SELinux refuses writes: a confined container (container_t) on a host directory that is not
    # labelled container_file_t. The kernel answers EACCES, and access(W_OK) says no.
    denied: bool = False


def _norm(path: str) -> str:
    path = posixpath.normpath("/" + path.lstrip("/"))
    return path


def _fail(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


@dataclass(frozen=True)
class Resolved:
    """Where a container path lands: the real path, the container path after symlinks, its mount."""

    real: Path
    path: str
    mount: Mount | None

    @property
    def read_only(self) -> bool:
        return self.mount is not None and self.mount.read_only


class ContainerFS:
    """The files one container sees. `rootfs` backs every path outside the mounts (the image's
    own layer: writable, thrown away with the container)."""

    def __init__(self, mounts: Iterable[Mount], rootfs: Path | None = None, jail: Iterable[Path] = ()) -> None:
        self.mounts = sorted(mounts, key=lambda m: len(_norm(m.path)), reverse=True)
        self.rootfs = rootfs
        # Real directories nothing may leave: a symlink swapped in above a mount's source on
        # the real filesystem must not carry a write out of the simulated node.
        self.jail = tuple(os.path.realpath(j) for j in jail)

    def _jailed(self, real: Path) -> bool:
        if not self.jail or real.is_relative_to("/nonexistent-outside-mounts"):
            return True
        if os.path.realpath(real) in self.jail and not os.path.islink(real):
            return True  # a jail root itself, e.g. a hostPath of "/"
        parent = os.path.realpath(real.parent)
        return any(parent == j or parent.startswith(j + os.sep) for j in self.jail)

    # --- resolution -------------------------------------------------------------------
    def _lexical(self, path: str) -> tuple[Path | None, Mount | None]:
        """The real path backing a symlink-free container path."""
        for mount in self.mounts:
            mp = _norm(mount.path)
            if path == mp or mp == "/" or path.startswith(mp + "/"):
                rel = path[len(mp) :].lstrip("/") if mp != "/" else path.lstrip("/")
                return (mount.source / rel if rel else mount.source), mount
        if self.rootfs is None:
            return None, None
        return self.rootfs / path.lstrip("/"), None

    def resolve(self, path: str, *, follow: bool = True) -> Resolved:
        """Resolve symlinks in every component but the last (and the last too when `follow`).

        The result may not exist; a missing *parent* raises ENOENT, a parent that is a file ENOTDIR.
        """
        if not path.startswith("/"):
            raise _fail(errno.ENOENT, path)
        todo = [p for p in path.split("/") if p]
        done = "/"
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                done = posixpath.dirname(done) or "/"
                continue
            cand = posixpath.join(done, part)
            real, _ = self._lexical(cand)
            last = not todo
            if real is None:
                if last:
                    return Resolved(Path("/nonexistent-outside-mounts") / cand.lstrip("/"), cand, None)
                raise _fail(errno.ENOENT, path)
            if os.path.islink(real) and (follow or not last):
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise _fail(errno.ELOOP, path)
                target = os.readlink(real)
                todo = [p for p in target.split("/") if p] + todo
                done = "/" if target.startswith("/") else done
                continue
            if not last:
                if not os.path.lexists(real):
                    raise _fail(errno.ENOENT, path)
                if not os.path.isdir(real):
                    raise _fail(errno.ENOTDIR, path)
            done = cand
        real, mount = self._lexical(done)
        if real is None:
            real = Path("/nonexistent-outside-mounts") / done.lstrip("/")
        if not self._jailed(real):
            raise _fail(errno.EACCES, path)
        return Resolved(real, done, mount)

    def _writable(self, path: str, *, follow: bool = True) -> Resolved:
        r = self.resolve(path, follow=follow)
        if r.real.is_relative_to("/nonexistent-outside-mounts"):
            raise _fail(errno.ENOENT, path)
        if r.read_only:
            raise _fail(errno.EROFS, path)
        if r.mount is not None and r.mount.denied:
            raise _fail(errno.EACCES, path)
        return r

    def writable(self, path: str) -> bool:
        """`test -w`: access(2) with W_OK, which asks SELinux too."""
        try:
            r = self._existing(path)
        except OSError:
            return False
        if r.read_only or (r.mount is not None and r.mount.denied):
            return False
        return os.access(r.real, os.W_OK)

    def _existing(self, path: str, *, follow: bool = True) -> Resolved:
        r = self.resolve(path, follow=follow)
        if not os.path.lexists(r.real) or r.real.is_relative_to("/nonexistent-outside-mounts"):
            raise _fail(errno.ENOENT, path)
        return r

    # --- queries ----------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        try:
            self._existing(path)
        except OSError:
            return False
        return True

    def lexists(self, path: str) -> bool:
        try:
            self._existing(path, follow=False)
        except OSError:
            return False
        return True

    def stat(self, path: str) -> os.stat_result:
        return os.stat(self._existing(path).real)

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(self._existing(path, follow=False).real)

    def is_dir(self, path: str) -> bool:
        try:
            return stat_mod.S_ISDIR(self.stat(path).st_mode)
        except OSError:
            return False

    def is_file(self, path: str) -> bool:
        try:
            return stat_mod.S_ISREG(self.stat(path).st_mode)
        except OSError:
            return False

    def is_symlink(self, path: str) -> bool:
        try:
            return stat_mod.S_ISLNK(self.lstat(path).st_mode)
        except OSError:
            return False

    def readlink(self, path: str) -> str:
        r = self._existing(path, follow=False)
        if not os.path.islink(r.real):
            raise _fail(errno.EINVAL, path)
        return os.readlink(r.real)

    def realpath(self, path: str) -> str:
        """The container path after every symlink; raises if it does not exist."""
        return self._existing(path).path

    def listdir(self, path: str) -> list[str]:
        r = self._existing(path)
        if not r.real.is_dir():
            raise _fail(errno.ENOTDIR, path)
        names = set(os.listdir(r.real))
        # Mount points show up in their parent's listing, as they do in a real container.
        prefix = r.path.rstrip("/") + "/"
        for mount in self.mounts:
            mp = _norm(mount.path)
            name = mp[len(prefix) :] if mp.startswith(prefix) else ""
            if name and "/" not in name:
                names.add(name)
        return sorted(names)

    def read_bytes(self, path: str) -> bytes:
        r = self._existing(path)
        if r.real.is_dir():
            raise _fail(errno.EISDIR, path)
        return r.real.read_bytes()

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode()

    # --- changes ----------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes, *, append: bool = False, mode: int = 0o644) -> None:
        _wrote(self, path)
        r = self._writable(path)
        if not r.real.parent.is_dir():
            raise _fail(errno.ENOENT, path)
        if r.real.is_dir():
            raise _fail(errno.EISDIR, path)
        fd = os.open(r.real, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def write_text(self, path: str, text: str, *, mode: int = 0o644) -> None:
        self.write_bytes(path, text.encode(), mode=mode)

    def mkdir(self, path: str, *, parents: bool = False, exist_ok: bool = False, mode: int = 0o755) -> None:
        _wrote(self, path)
        if parents:
            parent = posixpath.dirname(_norm(path))
            if parent != _norm(path) and not self.is_dir(parent):
                self.mkdir(parent, parents=True, exist_ok=True)
        r = self._writable(path, follow=False)
        if os.path.lexists(r.real):
            if exist_ok and self.is_dir(path):
                return
            raise _fail(errno.EEXIST, path)
        if not r.real.parent.is_dir():
            raise _fail(errno.ENOENT, path)
        os.mkdir(r.real, mode)

    def remove(self, path: str) -> None:
        _wrote(self, path)
        r = self._writable(path, follow=False)
        if not os.path.lexists(r.real):
            raise _fail(errno.ENOENT, path)
        if r.real.is_dir() and not r.real.is_symlink():
            raise _fail(errno.EISDIR, path)
        os.unlink(r.real)

    def rmdir(self, path: str) -> None:
        _wrote(self, path)
        r = self._writable(path, follow=False)
        if self._is_mount_point(r.path):
            raise _fail(errno.EBUSY, path)
        os.rmdir(r.real)

    def rmtree(self, path: str) -> None:
        _wrote(self, path)
        r = self._writable(path, follow=False)
        if self._is_mount_point(r.path):
            raise _fail(errno.EBUSY, path)
        if r.real.is_dir() and not r.real.is_symlink():
            shutil.rmtree(r.real)
        else:
            os.unlink(r.real)

    def rename(self, src: str, dst: str) -> None:
        _wrote(self, dst)
        a = self._writable(src, follow=False)
        b = self._writable(dst, follow=False)
        if not os.path.lexists(a.real):
            raise _fail(errno.ENOENT, src)
        if a.mount != b.mount:
            raise _fail(errno.EXDEV, src)
        if self._is_mount_point(a.path) or self._is_mount_point(b.path):
            raise _fail(errno.EBUSY, src)
        os.replace(a.real, b.real)

    def symlink(self, target: str, path: str) -> None:
        _wrote(self, path)
        r = self._writable(path, follow=False)
        if os.path.lexists(r.real):
            raise _fail(errno.EEXIST, path)
        os.symlink(target, r.real)

    def chmod(self, path: str, mode: int) -> None:
        _wrote(self, path)
        os.chmod(self._writable(path).real, mode)

    def _is_mount_point(self, path: str) -> bool:
        return any(_norm(m.path) == path for m in self.mounts)


def host_fs(node_root: Path, read_only: Iterable[str] = ()) -> ContainerFS:
    """The node itself: its whole root, writable but for `read_only` directories (e.g. GKE's
    Container-Optimized OS, whose /opt is on the read-only root filesystem)."""
    mounts = [Mount("/", node_root)] + [Mount(p, node_root / p.lstrip("/"), read_only=True) for p in read_only]
    return ContainerFS(mounts, jail=(node_root,))
