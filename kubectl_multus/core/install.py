"""Finding the Multus DaemonSet, telling thin from thick, and listing every path setting it uses.

Thin (`/thin_entrypoint`, legacy `/entrypoint.sh`) takes flags; thick (`multus-daemon`) reads
`daemon-config.json`. Each setting lives in one world: read inside the container, or written
into host files that the runtime's CNI call reads on the node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.paths import Location, MountTable
from kubectl_multus.core.snapshot import Obj, Snapshot, meta

THIN_MARKERS = ("thin_entrypoint", "entrypoint.sh")
THICK_MARKER = "multus-daemon"
DEFAULT_DAEMON_CONFIG = "/etc/cni/net.d/multus.d/daemon-config.json"
NOT_MULTUS = ("dynamic-networks", "admission-controller", "whereabouts", "network-resources-injector")


@dataclass(frozen=True)
class Setting:
    """One path Multus uses.

    world: `container` (resolved in the Multus container), `host` (written into
    00-multus.conf and used on the node) or `both` (thick binDir under chroot).
    role: what the path is for, which decides its right value.
    """

    name: str
    world: str
    role: str
    value: str | None
    default: str | None
    source: str  # arg | daemon-config

    @property
    def effective(self) -> str | None:
        return self.value if self.value is not None else self.default

    @property
    def field(self) -> str:
        return f"arg {self.name}" if self.source == "arg" else f"daemon-config {self.name}"

    @property
    def fix_key(self) -> str:
        return f"ds.arg.{self.name}" if self.source == "arg" else f"daemon_config.{self.name}"


# name, world, role, default
THIN_SETTINGS: tuple[tuple[str, str, str, str | None], ...] = (
    ("--cni-conf-dir", "container", "conf-dir", "/host/etc/cni/net.d"),
    ("--multus-autoconfig-dir", "container", "autoconfig-dir", "/host/etc/cni/net.d"),
    ("--cni-bin-dir", "container", "bin-dir", "/host/opt/cni/bin"),
    ("--multus-cni-conf-dir", "container", "multus-conf-dir", "/host/etc/cni/multus/net.d"),
    ("--multus-conf-file", "container", "conf-file", "auto"),
    ("--multus-kubeconfig-file-host", "host", "kubeconfig", "/etc/cni/net.d/multus.d/multus.kubeconfig"),
    ("--readiness-indicator-file", "host", "readiness", None),
    ("--additional-bin-dir", "host", "additional-bin-dir", None),
    ("--multus-log-file", "host", "log-file", None),
)

THICK_SETTINGS: tuple[tuple[str, str, str, str | None], ...] = (
    ("cniConfigDir", "container", "conf-dir", "/etc/cni/net.d"),
    ("multusAutoconfigDir", "container", "autoconfig-dir", None),
    ("binDir", "container", "bin-dir", "/opt/cni/bin"),  # world becomes `both` under chrootDir
    ("chrootDir", "container", "chroot", None),
    ("socketDir", "container", "socket-dir", "/run/multus/"),
    ("daemonSocketDir", "host", "daemon-socket-dir", "/run/multus/"),
    ("readinessindicatorfile", "container", "readiness", None),
    ("multusConfigFile", "container", "conf-file", "auto"),
    ("confDir", "container", "multus-conf-dir", "/etc/cni/multus/net.d"),
    ("cniDir", "container", "cache-dir", "/var/lib/cni/multus"),
    ("logFile", "both", "log-file", None),
)


@dataclass(frozen=True)
class Install:
    """One Multus DaemonSet, read."""

    ds: Obj
    mode: str  # thin | thick
    entrypoint: str
    container: Obj
    mounts: MountTable
    init_mounts: tuple[tuple[str, MountTable], ...]
    args: tuple[str, ...]
    conflicts: tuple[str, ...]  # evidence that the other mode is (also) configured

    @property
    def namespace(self) -> str:
        return meta(self.ds, "namespace", "default")

    @property
    def name(self) -> str:
        return meta(self.ds, "name")

    @property
    def ref(self) -> str:
        return f"DaemonSet {self.namespace}/{self.name}"

    @property
    def container_name(self) -> str:
        return str(self.container.get("name", ""))

    @property
    def image(self) -> str:
        return str(self.container.get("image", ""))

    @property
    def version(self) -> str:
        tail = self.image.rsplit("/", 1)[-1]
        return tail.split(":", 1)[1].split("@")[0] if ":" in tail else "latest"

    @property
    def pod_spec(self) -> Mapping[str, Any]:
        return pod_spec(self.ds)

    @property
    def shell_wrapped(self) -> bool:
        """The command runs through a shell script string (OpenShift: bash -c "exec ..."), so a
        flag can be edited where it stands but not appended."""
        return any(
            " " in str(w) for w in list(self.container.get("command") or []) + list(self.container.get("args") or [])
        )

    def flag_is_own_word(self, name: str) -> bool:
        words = [str(w) for w in list(self.container.get("command") or []) + list(self.container.get("args") or [])]
        return any(w == name or w.startswith(name + "=") for w in words)

    def flag(self, name: str) -> str | None:
        return flag_value(self.args, name)

    @property
    def release(self) -> tuple[int, int] | None:
        """(major, minor) from the image tag, None for tags such as `snapshot` or `latest`."""
        m = re.match(r"v?(\d+)\.(\d+)", self.version)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def with_ds(self, ds: Obj) -> Install:
        """The same install read from an edited copy of its DaemonSet."""
        main = next(c for c in pod_spec(ds).get("containers") or [] if c.get("name") == self.container_name)
        return read_install(ds, main)

    @property
    def daemon_config_path(self) -> str:
        for flag in ("-config", "--config"):
            v = flag_value(self.args, flag)
            if v:
                return v
        return DEFAULT_DAEMON_CONFIG


def flag_value(args: Sequence[str], name: str) -> str | None:
    """Value of `--name=v` or `--name v` (the last one wins, as in Go's flag packages)."""
    found = None
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            found = a.split("=", 1)[1]
        elif a == name and i + 1 < len(args) and not args[i + 1].startswith("-"):
            found = args[i + 1]
    return found


def _words(container: Mapping[str, Any]) -> list[str]:
    words: list[str] = []
    for part in list(container.get("command") or []) + list(container.get("args") or []):
        # Shell wrappers (OpenShift: bash -c "exec .../multus-daemon ...") hide flags in one string.
        words.extend(str(part).split() if " " in str(part) else [str(part)])
    return words


def pod_spec(ds: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template spec of a DaemonSet, `{}` where any level is missing."""
    return ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}


def _looks_like_multus(container: Mapping[str, Any]) -> bool:
    text = " ".join(_words(container))
    image = str(container.get("image", ""))
    repo = image.rsplit("/", 1)[-1].split(":", 1)[0]
    if any(n in image or n in text for n in NOT_MULTUS):
        return False
    if THICK_MARKER in text or "thin_entrypoint" in text:
        return True
    if "entrypoint.sh" in text:  # a common name: Multus's legacy one only with a Multus image or flags
        return "multus" in repo or "--multus-conf-file" in text or "--cni-conf-dir" in text
    return "multus" in repo and not container.get("command")


def find_installs(snapshot: Snapshot, namespace: str | None = None) -> list[Install]:
    """Every DaemonSet that runs Multus, optionally in one namespace."""
    found = []
    for ds in snapshot.daemonsets:
        if namespace and meta(ds, "namespace", "default") != namespace:
            continue
        main = next((c for c in pod_spec(ds).get("containers") or [] if _looks_like_multus(c)), None)
        if main is not None:
            found.append(read_install(ds, main))
    return found


def read_install(ds: Obj, main: Mapping[str, Any]) -> Install:
    spec = pod_spec(ds)
    volumes = spec.get("volumes") or []
    words = _words(main)
    text = " ".join(words)
    image = str(main.get("image", ""))
    conflicts: list[str] = []
    if THICK_MARKER in text:
        mode, entrypoint = "thick", next(w for w in words if THICK_MARKER in w)
        if any(
            a.startswith(("--cni-conf-dir", "--multus-autoconfig-dir", "--multus-kubeconfig-file-host")) for a in words
        ):
            conflicts.append("thin entrypoint flags passed to multus-daemon")
    elif any(m in text for m in THIN_MARKERS):
        mode, entrypoint = "thin", next(w for w in words if any(m in w for m in THIN_MARKERS))
        if "thick" in image.rsplit("/", 1)[-1]:
            conflicts.append(f"thick image {image} runs the thin entrypoint")
        cms = [v for v in volumes if (v.get("configMap") or {}).get("items")]
        if any(i.get("key") == "daemon-config.json" for v in cms for i in v["configMap"]["items"]):
            conflicts.append("a daemon-config.json ConfigMap is mounted, which only thick reads")
    else:  # no command: the image's ENTRYPOINT decides
        thick = "thick" in image.rsplit("/", 1)[-1]
        mode, entrypoint = (
            ("thick", "multus-daemon (image entrypoint)") if thick else ("thin", "/thin_entrypoint (image entrypoint)")
        )
    args = tuple(words[1:]) if main.get("command") else tuple(words)
    inits = tuple((str(c.get("name")), MountTable.of(c, volumes)) for c in spec.get("initContainers") or [])
    return Install(ds, mode, entrypoint, main, MountTable.of(main, volumes), inits, args, tuple(conflicts))


def thin_settings(install: Install) -> list[Setting]:
    return [
        Setting(name, world, role, install.flag(name), default, "arg") for name, world, role, default in THIN_SETTINGS
    ]


def thick_settings(config: Mapping[str, Any]) -> list[Setting]:
    chroot = bool(config.get("chrootDir"))
    out = []
    for name, world, role, default in THICK_SETTINGS:
        raw = config.get(name)
        value = str(raw) if isinstance(raw, str) else None
        if name == "binDir" and chroot:
            world = "both"
        out.append(Setting(name, world, role, value, default, "daemon-config"))
    return out


@dataclass(frozen=True)
class DaemonConfig:
    """The thick daemon config as one node's Multus reads it."""

    location: Location
    where: str  # "ConfigMap kube-system/multus-daemon-config key daemon-config.json" or "node file /..."
    text: str | None
    data: Mapping[str, Any] | None
    error: str | None  # why it could not be read or parsed


def parse_json_object(text: str) -> tuple[Mapping[str, Any] | None, str | None]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"invalid JSON: {exc}"
    if not isinstance(data, dict):
        return None, "invalid JSON: not an object"
    return data, None
