"""Which volumes hold the CNI conf and bin dirs, and the corrected layout for one node.

Settings are judged against the corrected layout: once a wrong hostPath is moved to the
runtime's directory, settings that merely matched the wrong one (the kubeconfig host path,
thick `binDir`) must follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubectl_multus.core.distros import K3S_VERSIONED_BIN, TABLE, RuntimeDirs
from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.fixplan import apply_to_daemonset
from kubectl_multus.core.install import Install, flag_value
from kubectl_multus.core.paths import MountTable, Volume, is_under, norm
from kubectl_multus.core.snapshot import NodeFiles

INSTALL_TARGET_DEFAULT = "/host/opt/cni/bin"
KNOWN_CONF_DIRS = {d.conf_dir for d in TABLE.values()} | {"/etc/cni/net.d", "/var/run/multus/cni/net.d"}


def _movable(inst: Install, vol: Volume, target: str, via: str | None) -> bool:
    """Is pointing `vol` at `target` the fix? Not when the volume already holds the target below it
    (the setting should point deeper), when it is mounted with subPath (its hostPath is only a base),
    or when the setting reaches into a subdirectory of it (then the setting is at fault)."""
    if vol.host_path is None or is_under(target, vol.host_path):
        return False
    if any(m.sub_path for m in inst.mounts.by_volume(vol.name)):
        return False
    return via is None or via == vol.host_path


@dataclass(frozen=True)
class Layout:
    """The install as it should be on this node: volume fixes applied, and their findings."""

    install: Install  # corrected
    findings: tuple[Finding, ...]
    conf_volume: Volume | None
    bin_volume: Volume | None
    bin_dir: str  # the runtime bin dir this install uses (one of the node's, when it searches several)

    @property
    def mounts(self) -> MountTable:
        return self.install.mounts


def _host_volumes(table: MountTable) -> list[Volume]:
    return [m.volume for m in table.mounts if m.volume.kind == "hostPath" and m.volume.host_path not in (None, "/")]


def conf_volume(inst: Install, conf_setting: str | None) -> Volume | None:
    """The hostPath volume through which Multus writes 00-multus.conf."""
    if conf_setting:
        loc = inst.mounts.resolve(conf_setting)
        if loc.kind == "host" and loc.mount and loc.mount.volume.host_path != "/":
            return loc.mount.volume
    vols = _host_volumes(inst.mounts)
    picks: tuple[Callable[[Volume], bool], ...] = (
        lambda v: any(m.mount_path == "/host/etc/cni/net.d" for m in inst.mounts.by_volume(v.name)),
        lambda v: v.name == "cni",
        lambda v: v.host_path in KNOWN_CONF_DIRS,
    )
    for pick in picks:
        found = next((v for v in vols if pick(v)), None)
        if found:
            return found
    return None


def install_target(inst: Install) -> tuple[str, MountTable] | None:
    """Where the init container copies the Multus binary: (container path, its mount table)."""
    inits = {name: table for name, table in inst.init_mounts}
    spec = inst.pod_spec
    for c in spec.get("initContainers") or []:
        words = [str(w) for w in (c.get("command") or []) + (c.get("args") or [])]
        text = " ".join(words)
        if "install_multus" in text:
            target = flag_value(words, "-d") or flag_value(words, "--dest-dir") or INSTALL_TARGET_DEFAULT
            return target, inits[str(c.get("name"))]
        if words[:1] == ["cp"] and "multus" in text:
            return norm(words[-1].rsplit("/", 1)[0]) if not words[-1].endswith("/") else norm(words[-1]), inits[
                str(c.get("name"))
            ]
    return None


def bin_volume(inst: Install, bin_setting: str | None) -> Volume | None:
    """The hostPath volume that receives the Multus binary (multus or multus-shim)."""
    if inst.mode == "thin" and bin_setting:
        loc = inst.mounts.resolve(bin_setting)
        if loc.kind == "host" and loc.mount and loc.mount.volume.host_path != "/":
            return loc.mount.volume
    target = install_target(inst)
    if target:
        loc = target[1].resolve(target[0])
        if loc.kind == "host" and loc.mount and loc.mount.volume.host_path != "/":
            return loc.mount.volume
    if inst.mode == "thick" and bin_setting:
        loc = inst.mounts.resolve(bin_setting)
        if loc.kind == "host" and loc.mount and loc.mount.volume.host_path != "/":
            return loc.mount.volume
    vols = _host_volumes(inst.mounts)
    return next((v for v in vols if v.name == "cnibin"), None) or next(
        (v for v in vols if (v.host_path or "").endswith("/bin")), None
    )


def _runtime_made(files: NodeFiles | None, path: str) -> str | None:
    if files is not None and files.exists(path) and files.listdir(path) == []:
        return f"host {path} exists but is empty: the container runtime creates a missing hostPath directory"
    return None


def correct(
    inst: Install,
    dirs: RuntimeDirs,
    files: NodeFiles | None,
    conf_setting: str | None,
    bin_setting: str | None,
    chroot: bool,
) -> Layout:
    """Volume findings for one node and the install with their fixes applied."""
    ds = Target("DaemonSet", inst.namespace, inst.name)
    findings: list[Finding] = []
    changes: list[Change] = []
    where = f"{dirs.distro.name} node (runtime dirs from {dirs.source})"
    if not dirs.confident:
        where += "; a guess: capture the node's runtime config to confirm"

    def volume_finding(
        code: str,
        severity: Severity,
        vol: Volume,
        why: str,
        *,
        expected: str | None = None,
        evidence: tuple[str, ...] = (),
        change: Change | None = None,
    ) -> None:
        findings.append(
            Finding(
                code,
                severity,
                why,
                object=inst.ref,
                field=f"volume {vol.name} hostPath",
                current=vol.host_path,
                expected=expected,
                evidence=evidence,
                remediation=f"set volume {vol.name} hostPath to {expected}" if expected else "",
                changes=(change,) if change else (),
            )
        )
        if change:
            changes.append(change)

    def runtime_evidence(what: str, target: str, vol: Volume) -> tuple[str, ...]:
        made = _runtime_made(files, vol.host_path or "")
        return (f"the runtime {what} {target} on this {where}", *([made] if made else []))

    cvol = conf_volume(inst, conf_setting)
    if cvol and cvol.host_path and norm(cvol.host_path) != dirs.conf_dir:
        via = inst.mounts.resolve(conf_setting).host_path if conf_setting else None
        if _movable(inst, cvol, dirs.conf_dir, via):
            volume_finding(
                "M107",
                Severity.ERROR,
                cvol,
                f"volume {cvol.name} mounts host {cvol.host_path}, but the node's runtime reads CNI configs from "
                f"{dirs.conf_dir}: Multus reads and writes a directory nobody uses",
                expected=dirs.conf_dir,
                evidence=runtime_evidence("reads CNI configs from", dirs.conf_dir, cvol),
                change=Change(ds, f"ds.volume.{cvol.name}.hostPath", dirs.conf_dir, cvol.host_path),
            )

    bvol = bin_volume(inst, bin_setting)
    bin_dir = bvol.host_path if bvol and bvol.host_path in dirs.bin_dirs else dirs.bin_dir
    versioned = bool(bvol and bvol.host_path and K3S_VERSIONED_BIN.match(bvol.host_path)) and dirs.distro.name == "k3s"
    if bvol and bvol.host_path and bvol.host_path not in dirs.bin_dirs and _movable(inst, bvol, dirs.bin_dir, None):
        ch = Change(ds, f"ds.volume.{bvol.name}.hostPath", dirs.bin_dir, bvol.host_path)
        if versioned:
            # Moving to data/cni is safe only where it exists: older k3s would get an empty dir.
            confirmed = files is not None and files.exists(dirs.bin_dir) is True
            volume_finding(
                "M113",
                Severity.WARNING,
                bvol,
                f"volume {bvol.name} mounts {bvol.host_path}, a k3s directory that belongs to one release; "
                "the runtime moves to a new one on upgrade and Multus's binary stays behind",
                expected=dirs.bin_dir,
                evidence=("a hostPath through a symlink is resolved once, when the pod starts",),
                change=ch if confirmed else None,
            )
        else:
            volume_finding(
                "M108",
                Severity.ERROR,
                bvol,
                f"volume {bvol.name} mounts host {bvol.host_path}, but the node's runtime looks for CNI binaries "
                f"in {dirs.bin_dir}: the Multus binary is installed where it is never found",
                expected=dirs.bin_dir,
                evidence=runtime_evidence("looks for CNI binaries in", dirs.bin_dir, bvol),
                change=ch,
            )
    elif bvol and versioned:
        volume_finding(
            "M113",
            Severity.INFO,
            bvol,
            f"volume {bvol.name} mounts {bvol.host_path}, which changes with every k3s upgrade; this k3s has "
            "no stable data/cni yet, so redeploy Multus after upgrades (or upgrade k3s)",
        )

    fixed = inst.with_ds(apply_to_daemonset(inst.ds, changes)) if changes else inst

    if chroot and bvol is not None:
        # Under chroot the daemon stats binDir in the pod and runs it on the host: same path in both.
        identity = any(
            m.volume.kind == "hostPath" and fixed.mounts.resolve(m.mount_path).host_path == m.mount_path == bin_dir
            for m in fixed.mounts.mounts
        )
        mounted = fixed.mounts.by_volume(bvol.name)
        if not identity and mounted:
            m = mounted[0]
            ch = Change(ds, f"ds.mount.{bvol.name}.mountPath", bin_dir, m.mount_path, inst.container_name)
            findings.append(
                Finding(
                    "M106",
                    Severity.ERROR,
                    f"the thick daemon runs delegate plugins chrooted to the host, so the CNI bin dir must be mounted "
                    f"at its host path {bin_dir}; volume {bvol.name} is mounted at {m.mount_path}",
                    object=inst.ref,
                    field=f"container {inst.container_name} mount {bvol.name} mountPath",
                    current=m.mount_path,
                    expected=bin_dir,
                    evidence=("multus-daemon expects the cnibin path to be identical in pod and host",),
                    remediation=f"mount volume {bvol.name} at {bin_dir} in container {inst.container_name}",
                    changes=(ch,),
                )
            )
            fixed = fixed.with_ds(apply_to_daemonset(fixed.ds, [ch]))
    return Layout(fixed, tuple(findings), cvol, bvol, bin_dir)
