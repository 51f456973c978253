"""Judge every path setting of one node's Multus against the corrected layout.

Each setting gets a row (what show-paths prints) and, when wrong, a finding with the value
that makes it right and the change that sets it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kubectl_multus.core.distros import RuntimeDirs, is_primary_config
from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.install import DaemonConfig, Install, Setting
from kubectl_multus.core.layout import Layout
from kubectl_multus.core.paths import MountTable, is_under, norm, repeated_run, strip_pod_prefix, undouble
from kubectl_multus.core.snapshot import NodeFiles

KUBECONFIG_IN_CONF_DIR = "multus.d/multus.kubeconfig"


@dataclass(frozen=True)
class PathRow:
    """One line of show-paths."""

    setting: str
    world: str
    configured: str | None  # None: not set and no default
    is_default: bool
    resolves_to: str  # "host /etc/cni/net.d", "ConfigMap x key y", "container only", ...
    host_path: str | None
    expected: str | None
    exists: bool | None
    ok: bool
    volume: str | None = None  # the volume the configured value resolves through


def describe(table: MountTable, path: str) -> tuple[str, str | None]:
    loc = table.resolve(path)
    if loc.kind == "host":
        return f"host {loc.host_path}", loc.host_path
    if loc.kind == "configMap":
        return f"ConfigMap {loc.config_map} key {loc.key}", None
    if loc.kind == "ephemeral":
        return f"{loc.mount.volume.kind if loc.mount else 'ephemeral'} volume (not on the host)", None
    return "container only (under no mount)", None


@dataclass(frozen=True)
class Context:
    install: Install  # as deployed
    layout: Layout  # corrected
    dirs: RuntimeDirs
    files: NodeFiles | None
    node: str
    config_target: Target  # where settings are changed: the DaemonSet, or the daemon config's home
    settings: dict[str, Setting]
    master_cni: str | None = None  # --multus-master-cni-file-name / multusMasterCNI: the primary by name


def _exists(files: NodeFiles | None, host: str | None) -> bool | None:
    return files.exists(host) if files is not None and host else None


def _same_host_file(files: NodeFiles | None, a: str, b: str) -> bool:
    if norm(a) == norm(b):
        return True
    return files is not None and files.exists(a) is True and files.realpath(a) == files.realpath(b)


def _change(ctx: Context, s: Setting, value: str | None) -> Change | None:
    """The change that sets `s` to `value`, or None when it cannot be made safely: a flag hidden
    inside a shell script string is the user's to edit (we never write into shell strings)."""
    if s.source == "arg" and ctx.install.shell_wrapped and not ctx.install.flag_is_own_word(s.name):
        return None
    return Change(ctx.config_target, s.fix_key, value, s.value, ctx.install.container_name if s.source == "arg" else "")


def _changes(ctx: Context, s: Setting, value: str | None) -> tuple[Change, ...]:
    change = _change(ctx, s, value) if value else None
    return (change,) if change else ()


def _field(ctx: Context, s: Setting) -> str:
    return f"container {ctx.install.container_name} {s.field}" if s.source == "arg" else s.field


def _object(ctx: Context) -> str:
    t = ctx.config_target
    return str(t) if t.kind != "NodeFile" else f"daemon config {t.path}"


def _wrong(
    ctx: Context,
    s: Setting,
    code: str,
    why: str,
    expected: str | None,
    *,
    current: str | None = None,
    fallback: str = "",
    evidence: tuple[str, ...] = (),
) -> Finding:
    """A setting with a wrong value: the finding, and the change to `expected` when there is one."""
    return Finding(
        code,
        Severity.ERROR,
        why,
        object=_object(ctx),
        field=_field(ctx, s),
        current=s.value if current is None else current,
        expected=expected,
        evidence=evidence,
        remediation=_remedy(ctx, s, expected, fallback),
        changes=_changes(ctx, s, expected),
    )


def _remedy(ctx: Context, s: Setting, expected: str | None, fallback: str = "") -> str:
    if not expected:
        return fallback or f"fix {s.name}"
    if _change(ctx, s, expected) is None:
        return f"edit the shell command of container {ctx.install.container_name}: set {s.name}={expected}"
    return f"set {s.name} to {expected}"


def _classify(ctx: Context, s: Setting, value: str, expected: str | None) -> tuple[str, str]:
    """Why a container-world value is wrong: (code, sentence)."""
    table = ctx.install.mounts
    undoubled = undouble(value)
    if undoubled:
        run = repeated_run(value)
        host = strip_pod_prefix(undoubled) or undoubled
        holds = "a host path" if ctx.layout.mounts.to_container(host) else "a path"
        return "M103", (
            f"{s.name} is a path inside the container, but it holds {holds} with a prefix applied twice "
            f"({run} repeated); no volume mount provides {value}"
            + (f". The host directory {host} is seen in the container at {expected}" if expected else "")
        )
    if (
        s.value is not None
        and table.resolve(value).kind == "container"
        and (
            ctx.layout.mounts.to_container(value, via_root=False)
            or norm(value) in (ctx.dirs.conf_dir, *ctx.dirs.bin_dirs)
        )
    ):
        return "M102", (
            f"{s.name} is read inside the container, but {value} is the host path; the container sees that "
            f"directory at {expected or ctx.layout.mounts.to_container(value)}"
        )
    if table.resolve(value).kind == "container":
        default = " (its default: the setting is not set)" if s.value is None else ""
        return "M101", (
            f"{s.name} is read inside the container, but {value}{default} is under no volume mount: "
            "the host never sees that path"
        )
    return "", ""


def _container_setting(
    ctx: Context, s: Setting, host_target: str, code_wrong_dir: str, what: str
) -> tuple[PathRow, Finding | None]:
    """A container-world directory that must lead to `host_target` on the host."""
    value = s.effective
    fixed = ctx.layout.mounts
    expected = fixed.to_container(host_target, writable=s.role == "conf-dir", via_root=False)
    resolves, host = describe(ctx.install.mounts, value) if value else ("not set", None)
    fixed_host = fixed.host_path(value) if value else None
    ok = value is not None and fixed_host is not None and _same_host_file(ctx.files, fixed_host, host_target)
    row = PathRow(s.name, s.world, value, s.value is None, resolves, host, expected, _exists(ctx.files, host), ok)
    if ok:
        return row, None
    if expected is None:
        why = (
            f"{s.name} must lead to {what}, host {host_target}, but no volume of container "
            f"{ctx.install.container_name} mounts it (the value {value} is {resolves})"
        )
        fallback = f"mount hostPath {host_target} into container {ctx.install.container_name} and point {s.name} at it"
        evidence = (f"{what}: host {host_target} ({ctx.dirs.source})",)
        return row, _wrong(ctx, s, "M101", why, None, fallback=fallback, evidence=evidence)
    if value is None:
        code, why = "M101", f"{s.name} is not set, and Multus needs it to find {what}"
    else:
        code, why = _classify(ctx, s, value, expected)
        if not code:
            code = code_wrong_dir
            why = f"{s.name} leads to host {fixed_host or host}, but {what} is {host_target} on this node"
    evidence = (f"{what}: host {host_target} ({ctx.dirs.source}), seen in the container at {expected}",)
    return row, _wrong(ctx, s, code, why, expected, evidence=evidence)


def check_conf_dir(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    return _container_setting(ctx, s, ctx.dirs.conf_dir, "M107", "the runtime's CNI conf dir")


def check_bin_dir(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    if s.world != "both":
        return _container_setting(ctx, s, ctx.layout.bin_dir, "M108", "the runtime's CNI bin dir")
    value = s.effective or ""
    fixed = ctx.layout.mounts
    resolves, host = describe(ctx.install.mounts, value)
    ok = norm(value) == ctx.layout.bin_dir and fixed.host_path(value) == ctx.layout.bin_dir
    if not ok and norm(value) == ctx.layout.bin_dir and _whole_daemon_chrooted(ctx):
        ok = True
    row = PathRow(
        s.name, s.world, value, s.value is None, resolves, host, ctx.layout.bin_dir, _exists(ctx.files, value), ok
    )
    if ok:
        return row, None
    default = " (the default)" if s.value is None else ""
    return row, Finding(
        "M106",
        Severity.ERROR,
        f"with chrootDir set, binDir is looked up in the container and run on the host, so it must be the runtime's "
        f"CNI bin dir {ctx.layout.bin_dir} mounted at that same path; it is {value}{default}",
        object=_object(ctx),
        field=_field(ctx, s),
        current=s.value,
        expected=ctx.layout.bin_dir,
        evidence=(
            f"runtime CNI bin dir: {ctx.layout.bin_dir} ({ctx.dirs.source})",
            f"{value} in the container: {resolves}",
        ),
        remediation=f"set binDir to {ctx.layout.bin_dir}",
        changes=_changes(ctx, s, ctx.layout.bin_dir),
    )


def _whole_daemon_chrooted(ctx: Context) -> bool:
    """Before v4.1 the daemon itself ran chrooted, so binDir was a plain host path. Manifests of that
    era mount no bin dir into the daemon; a v4.1+ image in such a manifest still needs the mount."""
    vol = ctx.layout.bin_volume
    mounted = vol is not None and bool(ctx.layout.mounts.by_volume(vol.name))
    release = ctx.install.release
    return not mounted and (release is None or release < (4, 1))


def _primary_dirs(ctx: Context) -> list[str]:
    """Host dirs that hold a primary CNI config, the runtime's conf dir first."""
    if ctx.files is None:
        return [ctx.dirs.conf_dir]
    candidates = [ctx.dirs.conf_dir] + [
        m.volume.host_path for m in ctx.layout.mounts.mounts if m.volume.kind == "hostPath" and m.volume.host_path
    ]
    return [d for d in dict.fromkeys(candidates) if any(is_primary_config(n) for n in ctx.files.listdir(d) or [])]


def check_autoconfig(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    value = s.effective
    fixed_host = ctx.layout.mounts.host_path(value) if value else None
    holders = _primary_dirs(ctx)
    if value and fixed_host and ctx.files is not None and fixed_host in holders:
        resolves, host = describe(ctx.install.mounts, value)
        ok = ctx.install.mounts.host_path(value) == fixed_host
        row = PathRow(s.name, s.world, value, s.value is None, resolves, host, value, _exists(ctx.files, host), ok)
        if ok:
            return row, None
    target = holders[0] if holders else ctx.dirs.conf_dir
    row, finding = _container_setting(ctx, s, target, "M110", "the directory holding the primary CNI config")
    if finding is None and ctx.files is not None and not holders:
        finding = Finding(
            "M110",
            Severity.ERROR,
            f"{s.name} leads to host {ctx.dirs.conf_dir}, which holds no *.conf or *.conflist: the primary CNI has "
            "not written its config (is it running on this node?)",
            object=_object(ctx),
            field=_field(ctx, s),
            current=s.value,
            expected=None,
            evidence=(f"host {ctx.dirs.conf_dir}: {', '.join(ctx.files.listdir(ctx.dirs.conf_dir) or []) or 'empty'}",),
            remediation="start the primary CNI (flannel, calico, cilium, ...) first; Multus delegates to it",
        )
        row = replace(row, ok=False)
    if finding is not None and finding.code == "M110" and holders:
        found = f"host {target} holds " + ", ".join(n for n in ctx.files.listdir(target) or [] if is_primary_config(n))  # type: ignore[union-attr]
        finding = replace(finding, evidence=(*finding.evidence, found))
    return row, finding


def check_kubeconfig(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    """Thin: the host path written into 00-multus.conf must be where the entrypoint writes the file."""
    value = s.effective or ""
    expected = f"{ctx.dirs.conf_dir}/{KUBECONFIG_IN_CONF_DIR}"
    exists = _exists(ctx.files, value)
    ok = _same_host_file(ctx.files, value, expected)
    row = PathRow(s.name, s.world, value, s.value is None, f"host {value}", value, expected, exists, ok)
    if ok:
        return row, None
    default = " (the default, as the flag is not set)" if s.value is None else ""
    in_pod = ctx.install.mounts.host_path(value)
    if in_pod and in_pod != value:
        code = "M104"
        why = (
            f"{s.name} is written into 00-multus.conf and read on the host, but {value} is the path inside the "
            f"container; on the host the file is {in_pod}"
        )
    else:
        code = "M103" if undouble(value) else "M105"
        why = (
            f"{s.name} is a host path written into 00-multus.conf{default}; it is {value}, but the entrypoint "
            f"writes the kubeconfig to host {expected}"
        )
    evidence = [f"the entrypoint writes <cni-conf-dir>/{KUBECONFIG_IN_CONF_DIR}, host {expected}"]
    if exists is False:
        evidence.append(f"{value} does not exist on the node: every pod's network setup would fail")
    return row, _wrong(ctx, s, code, why, expected, evidence=tuple(evidence))


def check_host_file(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    """Thin host-world paths that are optional: readiness file, additional bin dir."""
    value = s.value
    if value is None:
        return PathRow(s.name, s.world, None, True, "not set", None, None, None, True), None
    exists = _exists(ctx.files, value)
    in_pod = ctx.install.mounts.host_path(value)
    if in_pod and in_pod != value and strip_pod_prefix(value):
        row = PathRow(s.name, s.world, value, False, f"host {value}", value, in_pod, exists, False)
        return row, Finding(
            "M104",
            Severity.ERROR,
            f"{s.name} is used on the host, but {value} is the path inside the container; on the host it is {in_pod}",
            object=_object(ctx),
            field=_field(ctx, s),
            current=value,
            expected=in_pod,
            remediation=f"set {s.name}={in_pod}",
            changes=_changes(ctx, s, in_pod),
        )
    row = PathRow(s.name, s.world, value, False, f"host {value}", value, value, exists, exists is not False)
    if exists is False:
        code = "M112" if s.role == "readiness" else "M109"
        return row, Finding(
            code,
            Severity.ERROR,
            f"{s.name} names host {value}, which does not exist on the node",
            object=_object(ctx),
            field=_field(ctx, s),
            current=value,
            remediation=f"create {value} or fix {s.name}",
        )
    return row, None


def check_thick_readiness(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    value = s.value
    if value is None:
        return PathRow(s.name, s.world, None, True, "not set", None, None, None, True), None
    resolves, host = describe(ctx.layout.mounts, value)
    exists = _exists(ctx.files, host)
    holders = _primary_dirs(ctx)
    suggestion = None
    if ctx.files is not None and holders:
        name = next(n for n in ctx.files.listdir(holders[0]) or [] if is_primary_config(n))
        suggestion = ctx.layout.mounts.to_container(f"{holders[0]}/{name}")
    row = PathRow(
        s.name,
        s.world,
        value,
        False,
        resolves,
        host,
        suggestion if exists is False else value,
        exists,
        host is not None and exists is not False,
    )
    if host is None:
        code, why = _classify(ctx, s, value, suggestion)
        return row, Finding(
            code or "M101",
            Severity.ERROR,
            why or f"{s.name} {value} is not on the host",
            object=_object(ctx),
            field=_field(ctx, s),
            current=value,
            expected=suggestion,
            evidence=("the daemon waits 45 s for this file, then exits 1",),
            remediation=f"set {s.name} to the container path of the primary CNI's config, or remove it",
            changes=_changes(ctx, s, suggestion),
        )
    if exists is False:
        return row, Finding(
            "M112",
            Severity.ERROR,
            f"{s.name} waits for host {host}, which does not exist on the node; the daemon gives up after 45 s "
            "and exits 1",
            object=_object(ctx),
            field=_field(ctx, s),
            current=value,
            expected=suggestion,
            evidence=tuple(f"host {d} holds the primary CNI config" for d in holders[:1]),
            remediation=(
                f"set {s.name} to {suggestion} (the primary config present on the node), or remove the key"
                if suggestion
                else f"remove {s.name} or start the primary CNI"
            ),
            changes=_changes(ctx, s, suggestion),
        )
    return row, None


def check_socket(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    """Thick: socketDir (in the pod) and daemonSocketDir (the shim, on the host) are one directory."""
    shim = norm(ctx.settings["daemonSocketDir"].effective or "/run/multus")
    value = s.effective or ""
    resolves, host = describe(ctx.install.mounts, value)
    expected = ctx.layout.mounts.to_container(shim, writable=True)
    ok = ctx.layout.mounts.host_path(value) == shim
    row = PathRow(s.name, s.world, value, s.value is None, resolves, host, expected, _exists(ctx.files, host), ok)
    if ok:
        return row, None
    if s.value is not None and undouble(s.value):
        code, why = _classify(ctx, s, s.value, expected)
    else:
        default = " (the default)" if s.value is None else ""
        code, why = (
            "M111",
            (
                f"the shim on the host connects to {shim}/multus.sock, but the daemon creates its socket in {value}{default}, "
                f"which is {resolves}: pod creation would time out"
            ),
        )
    return row, _wrong(ctx, s, code, why, expected, fallback=f"mount host {shim} into the container")


def check_chroot(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    value = s.value
    if value is None:
        return PathRow(s.name, s.world, None, True, "not set", None, None, None, True), None
    resolves, host = describe(ctx.install.mounts, value)
    expected = ctx.layout.mounts.to_container("/")
    ok = host == "/"
    row = PathRow(s.name, s.world, value, False, resolves, host, expected, None, ok)
    if ok:
        return row, None
    why = f"chrootDir {value} is {resolves}, not the host's /: delegate plugins cannot run"
    return row, _wrong(ctx, s, "M114", why, expected, fallback="mount hostPath / (e.g. at /hostroot)")


def check_plain(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    """Settings with no single right value: list them, flag only what is wrong on its face."""
    value = s.effective
    if value is None or (s.role == "conf-file" and value == "auto"):
        return PathRow(
            s.name, s.world, value, s.value is None, "not set" if value is None else "-", None, None, None, True
        ), None
    if s.world == "host":
        return PathRow(
            s.name, s.world, value, s.value is None, f"host {value}", value, None, _exists(ctx.files, value), True
        ), None
    resolves, host = describe(ctx.install.mounts, value)
    row = PathRow(s.name, s.world, value, s.value is None, resolves, host, None, _exists(ctx.files, host), True)
    if s.value is not None and undouble(s.value):
        code, why = _classify(ctx, s, s.value, None)
        candidate = undouble(s.value)
        expected = candidate if candidate and ctx.layout.mounts.resolve(candidate).kind != "container" else None
        return replace(row, ok=False, expected=expected), _wrong(ctx, s, code, why, expected)
    if s.role == "conf-file" and ctx.install.mounts.resolve(value).kind == "container":
        return replace(row, ok=False), Finding(
            "M101",
            Severity.ERROR,
            f"{s.name} {value} is under no volume mount, so Multus cannot read it",
            object=_object(ctx),
            field=_field(ctx, s),
            current=s.value,
            remediation=f"mount the file, or set {s.name}=auto",
        )
    return row, None


CHECKS = {
    "conf-dir": check_conf_dir,
    "autoconfig-dir": check_autoconfig,
    "bin-dir": check_bin_dir,
    "kubeconfig": check_kubeconfig,
    "socket-dir": check_socket,
    "chroot": check_chroot,
}


# With a user-supplied config file (not `auto`) Multus only copies that file: these go unused.
UNUSED_WITHOUT_AUTO = ("autoconfig-dir", "kubeconfig")


def check_unused(ctx: Context, s: Setting) -> tuple[PathRow, Finding | None]:
    conf_file = next(x for x in ctx.settings.values() if x.role == "conf-file").effective
    why = f"unused: the config file is {conf_file}, not auto"
    return PathRow(s.name, s.world, s.effective, s.value is None, why, None, None, None, True), None


def check_settings(ctx: Context) -> tuple[list[PathRow], list[Finding]]:
    rows, findings = [], []
    conf_file = next((x for x in ctx.settings.values() if x.role == "conf-file"), None)
    auto = conf_file is None or conf_file.effective == "auto"
    for s in ctx.settings.values():
        if not auto and s.role in UNUSED_WITHOUT_AUTO:
            check = check_unused
        elif s.role == "readiness":
            check = check_host_file if s.world == "host" else check_thick_readiness
        elif s.role == "additional-bin-dir":
            check = check_host_file
        else:
            check = CHECKS.get(s.role, check_plain)
        row, finding = check(ctx, s)
        rows.append(row)
        if finding is not None:
            findings.append(finding)
    return rows, findings


def daemon_config_target(inst: Install, dc: DaemonConfig | None, node: str) -> Target:
    if dc is not None and dc.location.kind == "configMap":
        return Target("ConfigMap", inst.namespace, dc.location.config_map or "", key=dc.location.key or "")
    if dc is not None and dc.location.kind == "host" and dc.location.host_path:
        return Target("NodeFile", node=node, path=dc.location.host_path)
    return Target("DaemonSet", inst.namespace, inst.name)


def stray_configs(ctx: Context) -> list[Finding]:
    """00-multus.conf(list) in mounted host dirs the runtime does not read."""
    if ctx.files is None:
        return []
    out = []
    for m in ctx.install.mounts.mounts:
        d = m.volume.host_path
        if m.volume.kind != "hostPath" or not d or d == "/" or is_under(ctx.dirs.conf_dir, d) or d == ctx.dirs.conf_dir:
            continue
        for name in ctx.files.listdir(d) or []:
            if name.startswith("00-multus.conf"):
                out.append(
                    Finding(
                        "M205",
                        Severity.ERROR,
                        f"host {d}/{name} is a Multus config in a directory the node's runtime does not read "
                        f"(it reads {ctx.dirs.conf_dir})",
                        object=ctx.install.ref,
                        field=f"volume {m.volume.name}",
                        current=f"{d}/{name}",
                        remediation=f"fix the conf dir settings above, then delete {d}/{name}",
                    )
                )
    return out
