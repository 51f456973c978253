"""The container runtime half of a simulated kubelet: a pod's volumes prepared once at pod start,
each container's files (its image plus its mounts), its environment, and the program it runs.

What this reproduces, because a diagnosis depends on it:
- a hostPath is resolved on the node when the pod starts (a symlink such as k3s `data/current` is
  pinned to its target then); a missing one is created empty when its type allows, as containerd
  and the kubelet do, so a wrong hostPath leaves an empty directory on the node;
- ConfigMap, Secret, projected and downwardAPI volumes are read-only and laid out like the kubelet's
  atomic writer (`..data` -> `..<version>`, one symlink per key), so a subPath mount of a key is
  pinned to the version present when the container started while a whole-volume mount follows updates;
- a container's own files start from its image every time it starts.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simcluster import multus
from simcluster.fs import ContainerFS, Mount, host_fs
from simcluster.process import ContainerContext, Process, Program, Ready, Wait

SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# A fixed token shaped like a JWT (header.payload.signature); nothing checks its signature.
SA_TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InNpbWNsdXN0ZXIifQ"
    ".eyJpc3MiOiJodHRwczovL2t1YmVybmV0ZXMuZGVmYXVsdC5zdmMiLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ"
    ".c2ltdWxhdGVkLXNpZ25hdHVyZQ"
)
SA_CA = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhzaW1jbHVzdGVyLWNhQDE3MDAwMDAwMDAw\n"
    "-----END CERTIFICATE-----\n"
)
SERVICE_HOST, SERVICE_PORT = "10.43.0.1", "443"
MULTUS_BINARIES = (
    "multus",
    "multus-daemon",
    "multus-shim",
    "install_multus",
    "thin_entrypoint",
    "kubeconfig_generator",
    "cert-approver",
    "passthru",
)
SHELLS = {"sh", "bash", "ash", "dash"}


class VolumeError(Exception):
    """A volume the kubelet cannot set up; the message is the one its event carries."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume

    @property
    def event(self) -> str:
        """The FailedMount event's message."""
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self}'


@dataclass(frozen=True)
class _Volume:
    source: Path
    read_only: bool
    host: bool = False  # a hostPath: labelled as the host's files, not container_file_t


def confined(container: dict[str, Any], pod_spec: dict[str, Any]) -> bool:
    """Does SELinux confine this container (container_t)? Privileged ones run as spc_t, and a
    container given its own seLinuxOptions runs as that type."""
    sc = container.get("securityContext") or {}
    if sc.get("privileged") is True:
        return False
    return not (sc.get("seLinuxOptions") or (pod_spec.get("securityContext") or {}).get("seLinuxOptions"))


# --- images ----------------------------------------------------------------------------------
def _image_name(image: str) -> tuple[str, str]:
    """(last path segment of the repository, tag) of an image reference."""
    ref = image.split("@", 1)[0]
    name = ref.rsplit("/", 1)[-1]
    repo, _, tag = name.partition(":")
    return repo, tag


def is_multus_image(image: str) -> bool:
    """multus-cni, multus, hardened-multus-cni, hardened-multus-thick, ose-/origin-multus-cni, …"""
    repo, _ = _image_name(image)
    return re.fullmatch(r"(?:[a-z0-9]+-)*multus(?:-cni)?(?:-thick)?", repo) is not None


def has_tools(image: str) -> bool:
    """Can `kubectl exec` run sh, tar, find in this image? Upstream Multus images (and Rancher's
    hardened ones) are distroless: only the Multus binaries. OpenShift's are RHEL-based."""
    if not is_multus_image(image):
        return True
    return any(mark in image for mark in ("openshift", "redhat", "ose-", "origin-"))


def _is_thick_image(image: str) -> bool:
    repo, tag = _image_name(image)
    return "thick" in repo or "thick" in tag


def _upstream(image: str) -> bool:
    return "k8snetworkplumbingwg/" in image and _image_name(image)[0] == "multus-cni"


def _upstream_thick(image: str) -> bool:
    return _upstream(image) and _is_thick_image(image)


def missing_command(container: dict[str, Any], fs: ContainerFS) -> str | None:
    """The command runc cannot find: only for upstream images and the paths whose presence the
    model knows (the Multus binaries and entrypoints), so nothing else is judged."""
    image = str(container.get("image") or "")
    if not _upstream(image):
        return None
    command = [str(a) for a in container.get("command") or []] or [_image_entrypoint(image)]
    path = command[0]
    known = path.startswith(multus.BIN_DIR + "/") or path in ("/thin_entrypoint", "/install_multus", "/entrypoint.sh")
    return path if known and not fs.exists(path) else None


def image_files(image: str) -> dict[str, bytes]:
    """The files of an image that matter here: every Multus image carries all Multus binaries
    (thin and thick images alike), the thin ones also `/thin_entrypoint` and `/install_multus`
    (upstream's -thick images do not); v3 images also
    the shell `/entrypoint.sh`. Contents name the image, so a copied binary shows its origin."""
    if not is_multus_image(image):
        return {}
    files = {f"{multus.BIN_DIR}/{name}": _binary(image, name) for name in MULTUS_BINARIES}
    if not _upstream_thick(image):  # images/Dockerfile.thick copies only bin/ (and cert-approver)
        files["/thin_entrypoint"] = _binary(image, "thin_entrypoint")
        files["/install_multus"] = _binary(image, "install_multus")
    if _has_legacy_entrypoint(image):
        files["/entrypoint.sh"] = f"#!/bin/bash\n# multus entrypoint from {image} (simulated)\n".encode()
    return files


def _has_legacy_entrypoint(image: str) -> bool:
    """v3 images carry the bash /entrypoint.sh; so does `:stable`, which the upstream CRI-O manifest
    runs as /entrypoint.sh and which works there (the fixtures' expectation for that manifest)."""
    tag = _image_name(image)[1]
    return tag.startswith("v3") or tag == "stable"


def is_distroless(image: str) -> bool:
    """Only the Multus files, no shell or coreutils: the thin v4 images (distroless base). The
    `-thick` images are Debian-based, OpenShift's RHEL-based, v3 images carry a bash entrypoint."""
    if not is_multus_image(image) or _is_thick_image(image) or has_tools(image):
        return False
    return not _has_legacy_entrypoint(image)


PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def exec_error(container: dict[str, Any]) -> str | None:
    """Why runc cannot start the container's command in its image (None: it can). Only a
    distroless image lacks commands; the message is containerd's, with runc's exec error."""
    command = [str(a) for a in container.get("command") or []]
    image = str(container.get("image") or "")
    if not command or not is_distroless(image):
        return None  # the image's own entrypoint is in the image
    files, name = image_files(image), command[0]
    if "/" in name:
        found = posixpath.normpath(name) in files
        why = f"exec: {multus.go_quote(name)}: stat {name}: no such file or directory"
    else:
        found = any(f"{d}/{name}" in files for d in PATH_DIRS)
        why = f"exec: {multus.go_quote(name)}: executable file not found in $PATH"
    if found:
        return None
    return (
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
        f"runc create failed: unable to start container process: {why}: unknown"
    )


def _binary(image: str, name: str) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + f" {name} from {image} (simulated)\n".encode()


# --- the pod sandbox ---------------------------------------------------------------------------
class PodSandbox:
    """A pod on a node: volumes prepared once at start, then any number of container starts."""

    def __init__(
        self,
        pod: dict[str, Any],
        node_root: Path,
        workdir: Path,
        configmap: Callable[[str, str], dict[str, Any] | None],
        read_only: tuple[str, ...] = (),
        *,
        selinux: bool = False,
    ) -> None:
        self.pod = pod
        self.selinux = selinux  # the node enforces SELinux
        self.node_root = node_root
        self.host_read_only = read_only
        self.workdir = workdir
        self._configmap = configmap
        self.namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        self.spec: dict[str, Any] = pod.get("spec") or {}
        self._versions = 0
        self._starts = 0
        self._refreshable: dict[str, tuple[Path, dict[str, Any]]] = {}
        workdir.mkdir(parents=True, exist_ok=True)
        self.volumes: dict[str, _Volume] = {}
        for volume in self.spec.get("volumes") or []:
            self.volumes[volume["name"]] = self._prepare(volume)
        self.service_account: Path | None = None
        if self.spec.get("automountServiceAccountToken", True) is not False:
            self.service_account = self._dir("serviceaccount")
            self._write_atomic(self.service_account, self._service_account_files())

    # volumes ---------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if ".." in name.split("/") or name.startswith("/"):
            raise VolumeError(name, f"invalid name {name!r}")
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _prepare(self, volume: dict[str, Any]) -> _Volume:
        name = volume["name"]
        if "hostPath" in volume:
            return self._host_path(name, volume["hostPath"])
        target = self._dir(f"volumes/{name}")
        for kind in ("configMap", "projected", "downwardAPI", "secret"):
            if kind in volume:
                self._refreshable[name] = (target, volume)
                self._materialize(name, target, volume)
                return _Volume(target, read_only=True)
        return _Volume(target, read_only=False)  # emptyDir and anything else: a fresh directory

    def _host_path(self, name: str, spec: dict[str, Any]) -> _Volume:
        """The kubelet's type check (creating the path for the *OrCreate types), then containerd:
        create a missing source directory, resolve symlinks once. A bind mount of a directory on
        a read-only host filesystem is read-only too."""
        host = host_fs(self.node_root, self.host_read_only)
        path, kind = str(spec.get("path") or ""), str(spec.get("type") or "")
        try:
            if kind in ("", "DirectoryOrCreate") and not host.exists(path):
                host.mkdir(path, parents=True, exist_ok=True)
            elif kind == "FileOrCreate" and not host.exists(path):
                host.write_bytes(path, b"", mode=0o644)
        except OSError as err:
            # os.MkdirAll names the component it failed to create (mkdir /opt/cni on GKE's /opt).
            failed = err.filename or path
            raise VolumeError(name, f'failed to mkdir "{path}": mkdir {failed}: {multus.errno_text(err)}') from None
        problem = _host_path_type_problem(host, path, kind)
        if problem:
            raise VolumeError(name, problem)
        resolved = host.resolve(host.realpath(path))
        return _Volume(self.node_root / resolved.path.lstrip("/"), read_only=resolved.read_only, host=True)

    def _materialize(self, name: str, target: Path, volume: dict[str, Any]) -> None:
        if "configMap" in volume:
            files = self._configmap_files(name, volume["configMap"])
        elif "projected" in volume:
            files = self._projected_files(name, volume["projected"])
        elif "downwardAPI" in volume:
            files = self._downward_files(volume["downwardAPI"])
        else:
            files = {}  # secrets: the simulated cluster keeps none
        self._write_atomic(target, files)

    def _configmap_files(self, volume: str, spec: dict[str, Any]) -> dict[str, tuple[bytes, int]]:
        name, optional = str(spec.get("name") or ""), bool(spec.get("optional"))
        mode = int(spec.get("defaultMode", 0o644))
        cm = self._configmap(self.namespace, name)
        if cm is None:
            if optional:
                return {}
            raise VolumeError(volume, f'configmap "{name}" not found')
        data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        items = spec.get("items")
        if not items:
            return {key: (value, mode) for key, value in data.items()}
        files: dict[str, tuple[bytes, int]] = {}
        for item in items:
            key = item["key"]
            if key not in data:
                if optional:
                    continue
                raise VolumeError(volume, f"configmap references non-existent config key: {key}")
            files[item["path"]] = (data[key], int(item.get("mode", mode)))
        return files

    def _projected_files(self, volume: str, spec: dict[str, Any]) -> dict[str, tuple[bytes, int]]:
        mode = int(spec.get("defaultMode", 0o644))
        files: dict[str, tuple[bytes, int]] = {}
        for source in spec.get("sources") or []:
            if "serviceAccountToken" in source:
                files[source["serviceAccountToken"].get("path") or "token"] = (SA_TOKEN.encode(), mode)
            elif "configMap" in source:
                files.update(self._configmap_files(volume, {"defaultMode": mode, **source["configMap"]}))
            elif "downwardAPI" in source:
                files.update(self._downward_files({"defaultMode": mode, **source["downwardAPI"]}))
        return files

    def _downward_files(self, spec: dict[str, Any]) -> dict[str, tuple[bytes, int]]:
        mode = int(spec.get("defaultMode", 0o644))
        files: dict[str, tuple[bytes, int]] = {}
        for item in spec.get("items") or []:
            ref = (item.get("fieldRef") or {}).get("fieldPath", "")
            files[item["path"]] = (self._field(ref, {}).encode(), int(item.get("mode", mode)))
        return files

    def _service_account_files(self) -> dict[str, tuple[bytes, int]]:
        return {
            "token": (SA_TOKEN.encode(), 0o644),
            "ca.crt": (SA_CA.encode(), 0o644),
            "namespace": (self.namespace.encode(), 0o644),
        }

    def _write_atomic(self, target: Path, files: dict[str, tuple[bytes, int]]) -> None:
        """The kubelet's atomic writer: a new `..<version>` dir, `..data` swapped to it, one
        top-level symlink per entry. Old versions stay: a subPath mount still holds one."""
        self._versions += 1
        version = f"..{self._versions:04d}_simulated"
        for rel, (data, mode) in files.items():
            path = target / version / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
        (target / version).mkdir(exist_ok=True)
        swap = target / "..data_tmp"
        if os.path.lexists(swap):
            swap.unlink()
        swap.symlink_to(version)
        os.replace(swap, target / "..data")
        tops = {rel.split("/", 1)[0] for rel in files}
        for top in tops:
            if not os.path.lexists(target / top):
                (target / top).symlink_to(f"..data/{top}")
        for entry in os.listdir(target):
            if not entry.startswith("..") and entry not in tops:
                (target / entry).unlink()

    def refresh_configmaps(self) -> None:
        """Re-materialize ConfigMap-backed volumes from the current ConfigMaps (the kubelet's sync).
        A ConfigMap that went missing leaves the volume as it was, as the kubelet does."""
        for name, (target, volume) in self._refreshable.items():
            try:
                self._materialize(name, target, volume)
            except VolumeError:
                continue

    # containers ------------------------------------------------------------------------------
    def container_fs(self, container: dict[str, Any]) -> ContainerFS:
        """A fresh root from the image, with the container's mounts. Mount points are created the
        way runc does, in whatever is mounted below them (so a mount nested in a hostPath leaves
        its directory on the node)."""
        self._starts += 1
        rootfs = self._dir(f"rootfs/{container.get('name', 'container')}-{self._starts}")
        for path, data in image_files(str(container.get("image") or "")).items():
            real = rootfs / path.lstrip("/")
            real.parent.mkdir(parents=True, exist_ok=True)
            real.write_bytes(data)
            real.chmod(0o755)
        mounts = self._mounts(container)
        ordered = sorted(mounts, key=lambda m: posixpath.normpath(m.path).count("/"))
        jail = (self.node_root, self.workdir)
        # the runtime makes mount points itself, unconfined: SELinux does not stop it
        unconfined = [dataclasses.replace(m, denied=False) for m in ordered]
        for i, mount in enumerate(ordered):
            _make_mount_point(ContainerFS(unconfined[:i], rootfs, jail), mount)
        return ContainerFS(mounts, rootfs, jail)

    def _mounts(self, container: dict[str, Any]) -> list[Mount]:
        mounts: list[Mount] = []
        for vm in container.get("volumeMounts") or []:
            volume = self.volumes.get(vm["name"])
            if volume is None:
                raise VolumeError(
                    vm["name"], f'cannot find volume "{vm["name"]}" to mount into container "{container.get("name")}"'
                )
            source = volume.source
            sub = str(vm.get("subPath") or "")
            if not sub and vm.get("subPathExpr"):
                sub = _expand(str(vm["subPathExpr"]), self.env(container, {}))
            if sub:
                source = _sub_path(volume.source, sub)
            denied = self.selinux and volume.host and confined(container, self.spec)
            mounts.append(
                Mount(vm["mountPath"], source, read_only=volume.read_only or bool(vm.get("readOnly")), denied=denied)
            )
        taken = {posixpath.normpath(m.path) for m in mounts}
        if self.service_account is not None and SA_PATH not in taken:
            mounts.append(Mount(SA_PATH, self.service_account, read_only=True))
        return mounts

    def env(self, container: dict[str, Any], node: dict[str, Any]) -> dict[str, str]:
        """The container's environment: the service variables, envFrom, then env in order
        (`$(VAR)` refers to variables defined before it)."""
        env = {
            "KUBERNETES_SERVICE_HOST": SERVICE_HOST,
            "KUBERNETES_SERVICE_PORT": SERVICE_PORT,
            "KUBERNETES_SERVICE_PORT_HTTPS": SERVICE_PORT,
            "KUBERNETES_PORT": f"tcp://{SERVICE_HOST}:{SERVICE_PORT}",
            "HOSTNAME": self._node_name(node) if self.spec.get("hostNetwork") else self._field("metadata.name", node),
        }
        for source in container.get("envFrom") or []:
            ref = source.get("configMapRef")
            cm = self._configmap(self.namespace, ref["name"]) if ref else None
            for key, value in ((cm or {}).get("data") or {}).items():
                env[f"{source.get('prefix', '')}{key}"] = str(value)
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            if "value" in var:
                env[var["name"]] = _expand(str(var["value"]), env)
            elif "fieldRef" in value_from:
                env[var["name"]] = self._field(value_from["fieldRef"].get("fieldPath", ""), node)
            elif "configMapKeyRef" in value_from:
                ref = value_from["configMapKeyRef"]
                cm = self._configmap(self.namespace, ref.get("name", "")) or {}
                if ref.get("key") in (cm.get("data") or {}):
                    env[var["name"]] = str(cm["data"][ref["key"]])
            else:
                env.setdefault(var["name"], "")
        return env

    def _node_name(self, node: dict[str, Any]) -> str:
        return str(self.spec.get("nodeName") or (node.get("metadata") or {}).get("name") or "")

    def _field(self, path: str, node: dict[str, Any]) -> str:
        """A downward API fieldRef."""
        meta = self.pod.get("metadata") or {}
        addresses = (node.get("status") or {}).get("addresses") or []
        host_ip = next((a.get("address", "") for a in addresses if a.get("type") == "InternalIP"), "")
        simple = {
            "metadata.name": meta.get("name", ""),
            "metadata.namespace": self.namespace,
            "metadata.uid": meta.get("uid", ""),
            "spec.nodeName": self._node_name(node),
            "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
            "status.hostIP": host_ip,
            "status.podIP": host_ip if self.spec.get("hostNetwork") else "",
        }
        if path in simple:
            return str(simple[path])
        m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
        if m:
            return str((meta.get(m[1]) or {}).get(m[2], ""))
        if path in ("metadata.labels", "metadata.annotations"):
            items = sorted((meta.get(path.split(".")[1]) or {}).items())
            return "\n".join(f'{k}="{v}"' for k, v in items)
        return ""


def _host_path_type_problem(host: ContainerFS, path: str, kind: str) -> str:
    """The kubelet's hostPath type check, in its words."""
    expected = {
        "": (None, ""),
        "DirectoryOrCreate": (host.is_dir, "a directory"),
        "Directory": (host.is_dir, "a directory"),
        "FileOrCreate": (host.is_file, "a file"),
        "File": (host.is_file, "a file"),
        # The simulation keeps sockets and devices as plain files.
        "Socket": (lambda p: host.exists(p) and not host.is_dir(p), "a socket file"),
        "CharDevice": (lambda p: host.exists(p) and not host.is_dir(p), "a character device"),
        "BlockDevice": (lambda p: host.exists(p) and not host.is_dir(p), "a block device"),
    }
    if kind not in expected:
        return f"{kind} is an invalid volume type"
    check, what = expected[kind]
    if check is None or check(path):
        return ""
    return f"hostPath type check failed: {path} is not {what}"


def _sub_path(source: Path, sub: str) -> Path:
    """subPath: resolved inside the volume (symlinks too) when the container starts; a missing
    one is created as a directory, as the kubelet does."""
    inside = ContainerFS([Mount("/", source)])
    path = "/" + sub.lstrip("/")
    if not inside.exists(path):
        inside.mkdir(path, parents=True, exist_ok=True)
    return source / inside.realpath(path).lstrip("/")


def _make_mount_point(below: ContainerFS, mount: Mount) -> None:
    try:
        if mount.source.is_dir():
            below.mkdir(mount.path, parents=True, exist_ok=True)
        else:
            below.mkdir(posixpath.dirname(posixpath.normpath(mount.path)), parents=True, exist_ok=True)
            if not below.lexists(mount.path):
                below.write_bytes(mount.path, b"")
    except OSError:
        pass  # a read-only parent: the mount still shows (ContainerFS lists mount points itself)


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion; `$$` escapes; unknown references stay as written."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text)


# --- programs ----------------------------------------------------------------------------------
def program(container: dict[str, Any], *, init: bool) -> Program:
    """What the container runs: a Multus model when its command names one (directly, through the
    image's entrypoint, or inside `sh -c`), `sleep`, `cp`; any other init container completes at
    once and any other container runs forever."""
    command = [str(a) for a in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    image = str(container.get("image") or "")
    if not command and is_multus_image(image):
        command = [_image_entrypoint(image)]
    argv = command + args
    if not argv and _image_name(image)[0] == "hardened-cni-plugins":
        return _install_cni_plugins
    script = _shell_script(argv)
    if script is not None:
        return _shell_program(script, init)
    return _direct_program(argv) or (_completes if init else _runs_forever)


def _image_entrypoint(image: str) -> str:
    """ENTRYPOINT of the Multus images: thick, thin (v4), or the v3 shell script."""
    if _is_thick_image(image):
        return f"{multus.BIN_DIR}/multus-daemon"
    return "/entrypoint.sh" if _has_legacy_entrypoint(image) else "/thin_entrypoint"


def _direct_program(argv: list[str]) -> Program | None:
    if not argv:
        return None
    name, rest = posixpath.basename(argv[0]), argv[1:]
    if name == "thin_entrypoint":
        return multus.thin_entrypoint(rest, argv[0])
    if name == "entrypoint.sh":
        return multus.thin_entrypoint(rest, argv[0], legacy=True)
    if name == "multus-daemon":
        return multus.thick_daemon(rest, argv[0])
    if name == "install_multus":
        return multus.install_multus(rest, argv[0])
    if name == "sleep" and rest:
        return _sleep(rest[0])
    if name == "cp":
        return _cp(rest)
    return None


def _shell_script(argv: list[str]) -> str | None:
    """The script of `sh -c SCRIPT` (also `bash -ec`, `/bin/sh -c`)."""
    if not argv or posixpath.basename(argv[0]) not in SHELLS:
        return None
    for i, arg in enumerate(argv[1:], start=1):
        if arg.startswith("-") and "c" in arg[1:] and i + 1 < len(argv):
            return argv[i + 1]
        if not arg.startswith("-"):
            break
    return None


def _shell_program(script: str, init: bool) -> Program:
    """A wrapped command, run like the shell would as far as the models go: `cp` runs and the
    script goes on; the first Multus model or `sleep` takes over (`exec`). Variables come from the
    container's environment when it starts."""

    def run(ctx: ContainerContext) -> Process:
        status = 0
        for words in _shell_commands(_shell_vars(script, ctx.env)):
            argv = _drop_shell_prefix(words)
            chosen = _direct_program(argv)
            if chosen is None:
                continue
            if posixpath.basename(argv[0]) != "cp":
                return (yield from chosen(ctx))
            status = yield from chosen(ctx)
        if init:
            return status
        return (yield from _runs_forever(ctx))

    return run


def _drop_shell_prefix(words: list[str]) -> list[str]:
    """The command itself: without `exec`, keywords and leading VAR=value assignments."""
    keywords = {"exec", "then", "else", "do", "if", "!", "{", "time", "nohup"}
    i = 0
    while i < len(words) and (words[i] in keywords or re.match(r"[A-Za-z_][A-Za-z0-9_]*=", words[i])):
        i += 1
    return words[i:]


def _shell_vars(script: str, env: dict[str, str]) -> str:
    pattern = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
    return re.sub(pattern, lambda m: env.get(m[1] or m[3], "") or (m[2] or ""), script)


def _shell_commands(script: str) -> list[list[str]]:
    lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token and set(token) <= set(";&|()"):
                commands.append([])
            else:
                commands[-1].append(token)
    except ValueError:
        return [script.split()]
    return [c for c in commands if c]


# What RKE2's rancher/hardened-cni-plugins init container installs into the host bin dir (a few).
REFERENCE_PLUGINS = ("bridge", "host-local", "ipvlan", "loopback", "macvlan", "portmap")
CNI_PLUGINS_DEST = "/host/opt/cni/bin"


def _install_cni_plugins(ctx: ContainerContext) -> Process:
    """The rancher/hardened-cni-plugins entrypoint: copy the reference plugins into the mounted
    host bin dir, or, when the dir is not writable (SELinux denying an unprivileged container),
    say so and exit 0 all the same."""
    yield from ()
    if not ctx.fs.writable(CNI_PLUGINS_DEST):
        ctx.log(f"{CNI_PLUGINS_DEST} is non-writeable, skipping")
        return 0
    for name in REFERENCE_PLUGINS:
        ctx.fs.write_bytes(f"{CNI_PLUGINS_DEST}/{name}", _binary("rancher/hardened-cni-plugins", name), mode=0o755)
    return 0


def _completes(ctx: ContainerContext) -> Process:
    yield from ()
    return 0


def _runs_forever(ctx: ContainerContext) -> Process:
    yield Ready()
    yield Wait(None)
    return 0


def _sleep(duration: str) -> Program:
    def run(ctx: ContainerContext) -> Process:
        yield Ready()
        if duration == "infinity":
            yield Wait(None)
            return 0
        try:
            seconds = float(duration.rstrip("s"))
        except ValueError:
            ctx.log(f"sleep: invalid time interval '{duration}'")
            return 1
        yield Wait(seconds)
        return 0

    return run


def _cp(args: list[str]) -> Program:
    """`cp [-f] SRC... DEST` inside the container (coreutils' messages)."""

    def run(ctx: ContainerContext) -> Process:
        yield from ()
        paths = [a for a in args if not a.startswith("-")]
        if len(paths) < 2:
            ctx.log("cp: missing file operand")
            return 1
        *sources, dest = paths
        status = 0
        for src in sources:
            target = posixpath.join(dest, posixpath.basename(src)) if ctx.fs.is_dir(dest) else dest
            try:
                data = ctx.fs.read_bytes(src)
            except OSError as err:
                ctx.log(f"cp: cannot stat '{src}': {os.strerror(err.errno or 0)}")
                status = 1
                continue
            try:
                ctx.fs.write_bytes(target, data, mode=0o755)
            except OSError as err:
                ctx.log(f"cp: cannot create regular file '{target}': {os.strerror(err.errno or 0)}")
                status = 1
        return status

    return run
