"""The generated 00-multus.conf(list) against the primary CNI config it was made from: renamed
away, delegating to itself, stale, a cniVersion Multus rejects, an expired kubeconfig token."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.install import parse_json_object
from kubectl_multus.core.pathchecks import Context
from kubectl_multus.core.snapshot import NodeFiles

MULTUS_TYPES = ("multus", "multus-shim")
# Suffixes other tools give a config they take out of the runtime's way: Cilium's agent
# (cni.exclusive=true) renames every other config to <name>.cilium_bak (cilium/cilium#24389,
# multus-cni#972); .bak/.disabled/.orig are what people and scripts use. Not ours: fix keeps
# its node copies as <name>.kubectl-multus-<stamp>.bak.
_RENAMED = re.compile(r"^(?P<live>00-multus\.conf(?:list)?)\.(?P<suffix>cilium_bak|bak|backup|disabled|orig|old)$")
_TOKEN = re.compile(r"""^\s*token:\s*["']?(?P<jwt>[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)["']?\s*$""", re.M)


def loadable(name: str) -> bool:
    """A name libcni loads from a conf dir (ConfFiles: .conf, .conflist, .json)."""
    return name.endswith((".conf", ".conflist", ".json"))


def first_loaded(files: NodeFiles, directory: str) -> str | None:
    """The config the runtime loads: the first loadable file by name."""
    names = [n for n in files.listdir(directory) or [] if loadable(n) and files.is_dir(f"{directory}/{n}") is False]
    return sorted(names)[0] if names else None


def primary_in(files: NodeFiles, directory: str) -> str | None:
    """What Multus's auto mode takes as the primary: the first .conf/.conflist by name that is not its own."""
    names = [
        n
        for n in files.listdir(directory) or []
        if n.endswith((".conf", ".conflist"))
        and not n.startswith("00-multus.conf")
        and files.is_dir(f"{directory}/{n}") is False
    ]
    return sorted(names)[0] if names else None


def plugin_types(conf: Any) -> list[str]:
    """The plugin types of a CNI config: its own type, or those of its plugins (a conflist)."""
    if not isinstance(conf, Mapping):
        return []
    plugins = conf.get("plugins")
    if isinstance(plugins, list):
        return [str(p.get("type")) for p in plugins if isinstance(p, Mapping) and p.get("type")]
    return [str(conf["type"])] if conf.get("type") else []


def multus_plugin(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The multus (or multus-shim) entry of a generated config: the top level, or its conflist plugin."""
    plugins = data.get("plugins")
    if isinstance(plugins, list):
        return next((p for p in plugins if isinstance(p, Mapping) and p.get("type") in MULTUS_TYPES), {})
    return data


def semver(text: Any) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(text or ""))
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


@dataclass(frozen=True)
class Primary:
    """The primary config Multus would take now, on the host."""

    path: str
    data: Mapping[str, Any] | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def current_primary(ctx: Context) -> Primary | None:
    """From the autoconfig dir (its host path through the mounts), else the runtime's conf dir.
    A master CNI file name set on Multus picks the primary by name instead of the first one."""
    files = ctx.files
    if files is None:
        return None
    setting = ctx.settings.get("--multus-autoconfig-dir") or ctx.settings.get("multusAutoconfigDir")
    host = ctx.install.mounts.host_path(setting.effective) if setting and setting.effective else None
    for directory in dict.fromkeys(d for d in (host, ctx.dirs.conf_dir) if d):
        if ctx.master_cni:
            # not there yet: unknown, not another primary (thick waits for it, thin fails at start)
            name = ctx.master_cni if files.exists(f"{directory}/{ctx.master_cni}") else None
        else:
            name = primary_in(files, directory)
        if name:
            text = files.read(f"{directory}/{name}")
            data, _ = parse_json_object(text) if text else (None, None)
            return Primary(f"{directory}/{name}", data)
    return None


def _restart_hint(ctx: Context) -> str:
    labels = ((ctx.install.ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<its labels>"
    return f"kubectl -n {ctx.install.namespace} delete pod -l {selector} --field-selector spec.nodeName={ctx.node}"


# --- renamed away ----------------------------------------------------------------------------
def renamed_away(ctx: Context, cilium: tuple[str | None, str] | None) -> list[Finding]:
    """A 00-multus.conf(list) renamed out of the runtime's way with no live one left: the runtime
    calls the primary directly and Multus never runs (no error, no log). `cilium`: Cilium's
    cni-exclusive value and where it was read, when a Cilium DaemonSet runs on the node."""
    files = ctx.files
    if files is None:
        return []
    conf_dir = ctx.dirs.conf_dir
    names = files.listdir(conf_dir) or []
    if any(n.startswith("00-multus.conf") and loadable(n) for n in names):
        return []
    out: list[Finding] = []
    first = first_loaded(files, conf_dir)
    for name in sorted(names):
        m = _RENAMED.match(name)
        if m is None:
            continue
        path, live = f"{conf_dir}/{name}", f"{conf_dir}/{m['live']}"
        by_cilium = m["suffix"] == "cilium_bak"
        evidence = [
            f"host {conf_dir}: {', '.join(names)}",
            f"the runtime now loads {first or 'nothing'} first" + (", so Multus is never called" if first else ""),
        ]
        if by_cilium and cilium is not None:
            evidence.append(f"Cilium cni-exclusive: {cilium[0] or 'unknown'} ({cilium[1]})")
        text = files.read(path)
        data, _ = parse_json_object(text) if text else (None, None)
        changes = (Change(Target("NodeFile", node=ctx.node, path=live), "file", text),) if data else ()
        restore = (
            f"write {path} back as {live} (the plan does), and restart the Multus pod on node {ctx.node}, which "
            "regenerates it from the current primary config"
            if changes
            else f"restart the Multus pod on node {ctx.node} so it writes {live} again ({_restart_hint(ctx)})"
        )
        who = "Cilium's agent (cni.exclusive=true) renamed it" if by_cilium else "another tool renamed it"
        out.append(
            Finding(
                "M207",
                Severity.ERROR,
                f"host {live} is gone and {path} is there: {who}, so the runtime loads "
                f"{first or 'no config'} first and Multus never runs (no error, no log)",
                object=f"node file {live}",
                field=m["live"],
                current=path,
                expected=live,
                evidence=tuple(evidence),
                remediation=restore
                + ("; then stop Cilium renaming it again (see the Cilium finding)" if by_cilium else ""),
                changes=changes,
            )
        )
    return out


def cilium_exclusive_finding(
    namespace: str, daemonset: str, value: str | None, where: str, renamed: bool
) -> Finding | None:
    """Cilium with cni-exclusive on renames every other config in the conf dir whenever its agent
    restarts: a restored 00-multus.conf goes again. Changing it is Cilium's setting: a manual step."""
    if value is not None and not value.startswith("true"):
        return None
    if value is None and not renamed:
        return None
    state = f"cni-exclusive {value}" if value is not None else f"cni-exclusive that could not be read ({where})"
    return Finding(
        "M214",
        Severity.WARNING,
        f"Cilium runs with {state}: its agent renames 00-multus.conf to *.cilium_bak whenever it restarts, "
        "and then pods get no Multus",
        object=f"ConfigMap {namespace}/cilium-config",
        field="cni-exclusive",
        current=value,
        expected="false",
        evidence=(where,),
        remediation=f"helm upgrade cilium cilium/cilium -n {namespace} --reuse-values --set cni.exclusive=false "
        f'(or set cni-exclusive: "false" in ConfigMap {namespace}/cilium-config and run '
        f"kubectl -n {namespace} rollout restart ds/{daemonset})",
    )


# --- the generated file against the primary ------------------------------------------------------
def check_generated(ctx: Context, path: str, data: Mapping[str, Any], now: str) -> list[Finding]:
    """One parsed 00-multus.conf(list) Multus generated (auto mode) in the runtime's conf dir."""
    out: list[Finding] = []
    entry = multus_plugin(data)
    primary = current_primary(ctx)
    delegates = entry.get("delegates")
    delegate = delegates[0] if isinstance(delegates, list) and delegates else None
    source = "delegates"
    cluster = entry.get("clusterNetwork")
    if ctx.install.mode == "thick" and isinstance(cluster, str) and cluster.startswith("/") and ctx.files is not None:
        host = ctx.install.mounts.host_path(cluster)
        text = ctx.files.read(host) if host else None
        delegate = parse_json_object(text)[0] if text else None
        source = f"clusterNetwork {cluster} (host {host})"
        moved = host and primary is not None and ctx.files.realpath(host) != ctx.files.realpath(primary.path)
        if moved and primary is not None and ctx.files.exists(host or "") is not None:
            out.append(_stale(ctx, path, f"clusterNetwork names host {host}", primary, data))
        elif cluster.rsplit("/", 1)[-1].startswith("00-multus"):
            delegate = {"type": "multus-shim"}
    self_loop = _self_delegation(ctx, path, delegate, source, primary)
    if self_loop is not None:
        return [self_loop]
    if ctx.install.mode == "thin" and isinstance(delegate, Mapping) and primary is not None and primary.data:
        theirs = (primary.data.get("name"), plugin_types(primary.data)[:1], primary.data.get("cniVersion"))
        ours = (delegate.get("name"), plugin_types(delegate)[:1], delegate.get("cniVersion"))
        if ours[:2] != theirs[:2]:
            what = f"its delegate is {ours[0]!r} ({', '.join(ours[1]) or 'no type'})"
            out.append(_stale(ctx, path, what, primary, data))
    version = _version_mismatch(ctx, path, data, delegate, primary)
    if version is not None:
        out.append(version)
    expired = _expired_token(ctx, path, entry, now)
    if expired is not None:
        out.append(expired)
    return out


def _stale(ctx: Context, path: str, what: str, primary: Primary, data: Mapping[str, Any]) -> Finding:
    kind = ", ".join(plugin_types(primary.data)) if primary.data else "unreadable"
    return Finding(
        "M211",
        Severity.WARNING,
        f"host {path} is stale: {what}, but the primary config Multus would take now is {primary.path} "
        f"({(primary.data or {}).get('name', '?')!r}, {kind}); pods get the old primary network",
        object=f"node file {path}",
        field="delegates" if ctx.install.mode == "thin" else "clusterNetwork",
        current=what,
        expected=primary.path,
        evidence=(f"generated {path} cniVersion {data.get('cniVersion')}",),
        remediation=f"restart the Multus pod on node {ctx.node} ({_restart_hint(ctx)}): it regenerates {path} "
        "from the current primary at start",
    )


def _self_delegation(ctx: Context, path: str, delegate: Any, source: str, primary: Primary | None) -> Finding | None:
    types = plugin_types(delegate)
    if not any(t in MULTUS_TYPES for t in types):
        return None
    node = ctx.node
    changes = [Change(Target("NodeFile", node=node, path=path), "file", None)]
    extra = ""
    if primary is not None and any(t in MULTUS_TYPES for t in plugin_types(primary.data)):
        if ctx.master_cni:
            # named on purpose: removing it would stop Multus from starting; the setting is wrong
            extra = f", and name the primary CNI's config instead of {ctx.master_cni} as Multus's master CNI file"
        else:
            # Multus would pick the same leftover again: it goes too (fix keeps a copy).
            changes.append(Change(Target("NodeFile", node=node, path=primary.path), "file", None))
            extra = f" and the leftover Multus config {primary.path} it was made from"
    return Finding(
        "M210",
        Severity.ERROR,
        f"host {path} delegates to Multus itself ({source}: type {', '.join(types)}): it was generated from an "
        "old Multus config taken as the primary, and every pod's network setup loops or fails",
        object=f"node file {path}",
        field="delegates" if ctx.install.mode == "thin" else "clusterNetwork",
        current=", ".join(types),
        expected="the primary CNI's type",
        evidence=(f"primary Multus would take now: {primary.path if primary else 'none'}",),
        remediation=f"remove {path}{extra} on node {node} and restart its Multus pod, which regenerates it from "
        "the primary CNI's config",
        changes=tuple(changes),
    )


def _rejects(top: Any, delegate: Any) -> bool:
    """Multus refuses a delegate older than 0.4.0 under a top-level 0.4.0 or later
    (CheckVersionCompatibility: 'delegate cni version is X while top level cni version is Y')."""
    ours, theirs = semver(top), semver(delegate)
    return ours is not None and theirs is not None and ours >= (0, 4, 0) > theirs


def _set_daemon_version(ctx: Context, theirs: Any, ours: Any) -> tuple[str, tuple[Change, ...]]:
    """Thick: the remedy and change that give the daemon config the primary's cniVersion."""
    change = Change(ctx.config_target, "daemon_config.cniVersion", str(theirs), str(ours))
    return f"set the daemon config's cniVersion to {theirs} (the primary's) and restart the Multus pods", (change,)


def _version_mismatch(
    ctx: Context, path: str, data: Mapping[str, Any], delegate: Any, primary: Primary | None
) -> Finding | None:
    theirs = delegate.get("cniVersion") if isinstance(delegate, Mapping) else None
    if theirs is None and primary is not None and primary.data:
        theirs = primary.data.get("cniVersion")
    if not _rejects(data.get("cniVersion"), theirs):
        return None
    changes: tuple[Change, ...] = ()
    fix = f"restart the Multus pod on node {ctx.node} so it regenerates {path} with the primary's cniVersion"
    if ctx.install.mode == "thick":
        # the daemon config's cniVersion, copied into the file
        fix, changes = _set_daemon_version(ctx, theirs, data.get("cniVersion"))
    else:
        fix += "; if --cni-version or --force-cni-version sets it, see the --cni-version finding"
    return Finding(
        "M212",
        Severity.ERROR,
        f"host {path} has cniVersion {data.get('cniVersion')}, but its delegate (the primary CNI config) has "
        f"{theirs}: Multus rejects a delegate below 0.4.0 under a top level of 0.4.0 or later, so every pod's "
        "network setup fails",
        object=f"node file {path}",
        field="cniVersion",
        current=str(data.get("cniVersion")),
        expected=str(theirs),
        evidence=(f"delegate cni version is {theirs} while top level cni version is {data.get('cniVersion')}",),
        remediation=fix,
        changes=changes,
    )


def daemon_version_mismatch(ctx: Context, where: str, version: Any) -> Finding | None:
    """Thick, from the daemon config: the daemon runs the same check on the primary before it
    writes 00-multus.conf, and exits 2 on a mismatch, so no file on the node shows it."""
    primary = current_primary(ctx)
    theirs = primary.data.get("cniVersion") if primary is not None and primary.data else None
    if primary is None or not _rejects(version, theirs):
        return None
    fix, changes = _set_daemon_version(ctx, theirs, version)
    return Finding(
        "M212",
        Severity.ERROR,
        f"the daemon config's cniVersion is {version}, but the primary CNI config {primary.path} has {theirs}: "
        "Multus rejects a delegate below 0.4.0 under a top level of 0.4.0 or later, so the daemon exits at start",
        object=where,
        field="cniVersion",
        current=str(version),
        expected=str(theirs),
        evidence=(f"delegate cni version is {theirs} while top level cni version is {version}",),
        remediation=fix,
        changes=changes,
    )


def jwt_exp(token: str) -> int | None:
    """The `exp` claim of a JWT (seconds since the epoch), read without verifying anything."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return int(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expired_token(ctx: Context, path: str, entry: Mapping[str, Any], now: str) -> Finding | None:
    """Thin: the kubeconfig the entrypoint wrote holds the service-account token inline; once its
    exp has passed, the multus binary's API calls fail with 401 Unauthorized. Only the claim is read."""
    kubeconfig = entry.get("kubeconfig")
    when = parse_time(now) if now else None
    if ctx.install.mode != "thin" or ctx.files is None or not isinstance(kubeconfig, str) or when is None:
        return None
    text = ctx.files.read(kubeconfig) or ""
    exps = [e for e in (jwt_exp(m["jwt"]) for m in _TOKEN.finditer(text)) if e is not None]
    if not exps or min(exps) > when.timestamp():
        return None
    expired = datetime.fromtimestamp(min(exps), tz=timezone.utc)
    return Finding(
        "M213",
        Severity.ERROR,
        f"the service-account token in host {kubeconfig} (named by {path}) expired at {_iso(expired)}: the multus "
        "binary's API calls fail with 401 Unauthorized, so pods with extra networks do not start",
        object=f"node file {kubeconfig}",
        field="users[].user.token exp",
        current=_iso(expired),
        evidence=(f"snapshot taken at {_iso(when)}",),
        remediation=f"restart the Multus pod on node {ctx.node} ({_restart_hint(ctx)}): the entrypoint writes a fresh "
        "token at start; while running, the thin entrypoint of Multus 4 rewrites it only in its watch loop "
        "(--cleanup-config-on-exit=true), so set that flag to keep it fresh",
    )
