"""Diagnose: snapshot in, report out. Collect once, then judge every node of every install."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubectl_multus.core.attachments import check_attachments
from kubectl_multus.core.binaries import attach_find_failures, plugin_needs
from kubectl_multus.core.confchecks import (
    check_generated,
    cilium_exclusive_finding,
    daemon_version_mismatch,
    renamed_away,
)
from kubectl_multus.core.daemonpod import (
    check_killed_burstable,
    check_propagation,
    check_socket,
    check_start_errors,
    kill_evidence,
    pod_logs,
    socket_absent,
)
from kubectl_multus.core.distros import RuntimeDirs, is_primary_config, runtime_dirs
from kubectl_multus.core.findings import CATALOGUE, Change, Finding, Severity, Target, sort_key
from kubectl_multus.core.flags import check_cni_version, check_flags
from kubectl_multus.core.hostwrites import check_host_writes, denials
from kubectl_multus.core.images import check_image_flavour
from kubectl_multus.core.install import (
    DaemonConfig,
    Install,
    Setting,
    find_installs,
    parse_json_object,
    thick_settings,
    thin_settings,
)
from kubectl_multus.core.kubeletdir import check_kubelet_dir
from kubectl_multus.core.layout import Layout, correct
from kubectl_multus.core.pathchecks import (
    KUBECONFIG_IN_CONF_DIR,
    Context,
    PathRow,
    check_settings,
    daemon_config_target,
    stray_configs,
)
from kubectl_multus.core.podchecks import (
    all_pods_of,
    check_pod,
    check_resources,
    log_hits,
    pod_summary,
    pods_of,
)
from kubectl_multus.core.primarycni import PrimaryDaemonSet, check_primary_down, cilium_exclusive, primary_daemonsets
from kubectl_multus.core.scheduling import runs_on
from kubectl_multus.core.snapshot import NodeFiles, Obj, Snapshot, configmap_text, meta


class MultusNotFound(Exception):
    """No DaemonSet in the snapshot runs Multus."""


class NothingToCheck(Exception):
    """The snapshot lacks what any check needs (no nodes)."""


@dataclass(frozen=True)
class NodeReport:
    name: str
    distribution: str
    conf_dir: str
    bin_dir: str
    dirs_source: str
    pod: Mapping[str, Any]
    files: str  # checked | not captured | unreadable: <why>
    daemon_config: str | None
    rows: tuple[PathRow, ...]


@dataclass(frozen=True)
class InstallReport:
    install: Install
    nodes: tuple[NodeReport, ...]


@dataclass(frozen=True)
class Report:
    source: str
    installs: tuple[InstallReport, ...]
    findings: tuple[Finding, ...]

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    @property
    def healthy(self) -> bool:
        return self.worst is None or self.worst <= Severity.INFO


def read_daemon_config(snapshot: Snapshot, inst: Install, files: NodeFiles | None) -> DaemonConfig:
    path = inst.daemon_config_path
    loc = inst.mounts.resolve(path)
    if loc.kind == "configMap":
        where = f"ConfigMap {inst.namespace}/{loc.config_map} key {loc.key}"
        cm = snapshot.configmap(inst.namespace, loc.config_map or "")
        if cm is None:
            return DaemonConfig(loc, where, None, None, f"ConfigMap {inst.namespace}/{loc.config_map} does not exist")
        text, _binary = configmap_text(cm, loc.key or "")
        if text is None:
            return DaemonConfig(loc, where, None, None, f"{where} does not exist")
    elif loc.kind == "host":
        where = f"node file {loc.host_path}"
        if files is None:
            return DaemonConfig(loc, where, None, None, None)  # not captured: unknown, not broken
        text = files.read(loc.host_path or "")
        if text is None:
            exists = files.exists(loc.host_path or "")
            if exists is None:
                return DaemonConfig(loc, where, None, None, None)
            return DaemonConfig(
                loc,
                where,
                None,
                None,
                f"{where} does not exist on the node" if not exists else f"{where} could not be read",
            )
    else:
        return DaemonConfig(
            loc,
            f"{path} in the container",
            None,
            None,
            f"{path} is under no volume mount: open {path}: no such file or directory",
        )
    data, error = parse_json_object(text)
    return DaemonConfig(loc, where, text, data, error and f"{where}: {error}")


def _multus_conf(
    ctx: Context, pod_ok: bool | None, conf_file: str, snapshot: Snapshot, cilium: PrimaryDaemonSet | None
) -> list[Finding]:
    """The 00-multus.conf(list) Multus wrote (not in auto mode: the file it copied) into the runtime's conf dir."""
    files = ctx.files
    auto = conf_file == "auto"
    if files is None or not files.exists(ctx.dirs.conf_dir):
        return []
    copied = conf_file.rsplit("/", 1)[-1]
    # What the runtime loads (libcni: .conf, .conflist, .json): not our backups (*.bak) nor temp files.
    names = [
        n
        for n in files.listdir(ctx.dirs.conf_dir) or []
        if (n.startswith("00-multus.conf") and n.endswith((".conf", ".conflist", ".json"))) or n == copied
    ]
    out: list[Finding] = []
    exclusive = cilium_exclusive(snapshot, cilium) if cilium is not None else None
    renamed = renamed_away(ctx, exclusive) if not names else []
    out.extend(renamed)
    if cilium is not None and exclusive is not None:
        # also while 00-multus.conf is still there: the agent's next restart renames it
        by_cilium = any(f.current and f.current.endswith(".cilium_bak") for f in renamed)
        claim = cilium_exclusive_finding(
            cilium.namespace, meta(cilium.ds, "name"), exclusive[0], exclusive[1], by_cilium
        )
        out.extend([claim] if claim else [])
    if not names:
        if auto and pod_ok and not renamed:
            out.append(
                Finding(
                    "M203",
                    Severity.WARNING,
                    f"there is no 00-multus.conf or 00-multus.conflist in the runtime's conf dir {ctx.dirs.conf_dir}: "
                    "pods start without Multus",
                    object=ctx.install.ref,
                    field="00-multus.conf",
                    evidence=(
                        f"host {ctx.dirs.conf_dir}: {', '.join(files.listdir(ctx.dirs.conf_dir) or []) or 'empty'}",
                    ),
                    remediation="fix the conf dir findings, then restart the Multus pod",
                )
            )
        return out
    for name in names:
        path = f"{ctx.dirs.conf_dir}/{name}"
        text = files.read(path)
        data, error = parse_json_object(text) if text else (None, "it is empty" if text == "" else None)
        if error and auto and name.startswith("00-multus.conf"):
            out.append(_broken_conf(ctx, path, name, error, names))
        if not data:
            continue
        if auto and name.startswith("00-multus.conf"):
            out.extend(check_generated(ctx, path, data, snapshot.captured_at))
        raw = data.get("plugins")
        plugins: list[Any] = raw if isinstance(raw, list) else [data]
        kubeconfig = next((p.get("kubeconfig") for p in plugins if isinstance(p, dict) and p.get("kubeconfig")), None)
        if ctx.install.mode != "thin" or not kubeconfig or files.exists(str(kubeconfig)) is not False:
            continue
        setting = ctx.settings["--multus-kubeconfig-file-host"]
        expected = f"{ctx.dirs.conf_dir}/{KUBECONFIG_IN_CONF_DIR}"
        change = Change(ctx.config_target, setting.fix_key, expected, setting.value, ctx.install.container_name)
        out.append(
            Finding(
                "M204",
                Severity.ERROR,
                f"host {path} tells the multus binary to read kubeconfig {kubeconfig}, which does not exist on the node: "
                "every pod's network setup fails",
                object=f"node file {path}",
                field="kubeconfig",
                current=str(kubeconfig),
                expected=expected,
                evidence=(f"the entrypoint wrote the kubeconfig to {expected}",),
                remediation=f"set --multus-kubeconfig-file-host={expected}; the entrypoint rewrites {name}"
                if auto
                else f"fix the kubeconfig in the file --multus-conf-file names ({conf_file})",
                changes=(change,) if auto else (),
            )
        )
    return out


# Log lines that say the primary config is missing (thin, thick), as opposed to unreadable.
_NO_MASTER = ("cannot find valid master CNI config", "could not find a plugin configuration in")
_AUTOCONFIG = ("--multus-autoconfig-dir", "multusAutoconfigDir")


def _no_primary(
    inst: Install, dirs: RuntimeDirs, files: NodeFiles | None, hits: list[Any], findings: list[Finding]
) -> str:
    """Why the node has no primary CNI config at all ("" when it has one, or when Multus looks in
    the wrong place: then the path findings are the cause, not the primary CNI)."""
    if files is not None:
        names = files.listdir(dirs.conf_dir)
        mounted = [m.volume.host_path for m in inst.mounts.mounts if m.volume.kind == "hostPath" and m.volume.host_path]
        for d in [dirs.conf_dir, *mounted]:
            if d != "/" and any(is_primary_config(n) for n in files.listdir(d) or []):
                return ""  # there is one (if Multus misses it, its path findings say why)
        if names is None:
            return ""
        return f"host {dirs.conf_dir} holds no primary CNI config ({', '.join(names) or 'empty'})"
    path_wrong = any(f.code != "M202" and f.field.endswith(_AUTOCONFIG) for f in findings)
    line = next((h.line for h in hits if any(m in h.line for m in _NO_MASTER)), None)
    return f"log ({inst.container_name}): {line}" if line and not path_wrong else ""


def _broken_conf(ctx: Context, path: str, name: str, error: str, names: list[str]) -> Finding:
    """An empty or unparsable 00-multus.conf(list): the runtime loads the first config by name,
    so it breaks every pod's network setup on the node even while Multus itself runs."""
    first = sorted(n for n in names if n.startswith("00-multus.conf"))[0] == name
    node = ctx.node
    return Finding(
        "M206",
        Severity.ERROR,
        f"host {path} is not a valid CNI config ({error})"
        + ("; it is the first config the runtime loads, so every pod's network setup fails" if first else ""),
        object=f"node file {path}",
        field=name,
        current=error,
        evidence=(f"host {ctx.dirs.conf_dir}: {', '.join(names)}",),
        remediation=f"remove {path} on node {node} and restart its Multus pod, which writes a fresh one",
        changes=(Change(Target("NodeFile", node=node, path=path), "file", None),),
    )


def _attach_logs(
    findings: list[Finding], hits: list[Any], inst: Install, node: str, volumes: Mapping[str, str]
) -> list[Finding]:
    """Tie each recognised log line to the finding that explains it: the setting it names, or
    the volume that setting goes through; a line nothing explains becomes a finding itself."""
    out = list(findings)
    for hit in hits:
        evidence = f"log ({hit.container}{', previous' if hit.previous else ''}): {hit.line}"
        if hit.mode not in ("any", inst.mode):
            out.append(
                Finding(
                    "M002",
                    Severity.WARNING,
                    f"the logs on node {node} come from the {hit.mode} Multus, but the DaemonSet runs the {inst.mode} "
                    f"entrypoint {inst.entrypoint}: the running image or command is not what the manifest says",
                    object=inst.ref,
                    field=f"container {inst.container_name}",
                    evidence=(evidence,),
                    remediation="check the image and command of the running pod against the DaemonSet",
                )
            )
            continue
        idx = next((i for i, f in enumerate(out) if hit.setting and f.field.endswith(hit.setting)), None)
        vol = volumes.get(hit.setting)
        if idx is None and vol:
            idx = next((i for i, f in enumerate(out) if f.field == f"volume {vol} hostPath"), None)
        if idx is not None:
            out[idx] = replace(out[idx], evidence=(*out[idx].evidence, evidence))
        else:
            out.append(
                Finding(
                    "M202",
                    Severity.ERROR,
                    f"Multus reports a startup error: {hit.line}",
                    object=inst.ref,
                    field=f"{'arg ' if hit.setting.startswith('-') else 'daemon-config '}{hit.setting}"
                    if hit.setting
                    else "",
                    evidence=(evidence,),
                    remediation=f"check {hit.setting} ({hit.detail})" if hit.setting else "see the message",
                )
            )
    return out


def diagnose_node(
    snapshot: Snapshot, inst: Install, node_name: str, pod: Obj | None
) -> tuple[NodeReport, list[Finding]]:
    node = snapshot.node(node_name) or {"metadata": {"name": node_name}}
    files = snapshot.node_files.get(node_name)
    dirs: RuntimeDirs = runtime_dirs(node, files)
    findings: list[Finding] = []
    dc = None
    settings: list[Setting] = []
    primaries = primary_daemonsets(snapshot, [i.ds for i in find_installs(snapshot)])
    if inst.mode == "thin":
        settings = thin_settings(inst)
    else:
        dc = read_daemon_config(snapshot, inst, files)
        if dc.error:
            findings.append(
                Finding(
                    "M003",
                    Severity.ERROR,
                    f"the thick daemon cannot load its config: {dc.error}",
                    object=dc.where,
                    field=f"container {inst.container_name} -config",
                    current=inst.daemon_config_path,
                    evidence=("multus-daemon exits 1: failed to load the CNI server configuration",),
                    remediation="restore the daemon config (upstream: ConfigMap multus-daemon-config, key daemon-config.json)",
                )
            )
        if dc.data is not None:
            settings = thick_settings(dc.data)
        elif dc.error is None:
            findings.append(
                Finding(
                    "M900",
                    Severity.WARNING,
                    f"the daemon config is {dc.where} and its content is not in the snapshot: "
                    f"the paths it sets were not checked on node {node_name}",
                    object=f"Node {node_name}",
                    remediation="capture the node's files (see docs/dump-format.md) or run against the cluster",
                )
            )
    by_name = {s.name: s for s in settings}
    rows: list[PathRow] = []
    layout: Layout | None = None
    pod_ok: bool | None = None
    if settings:
        conf = next(s for s in settings if s.role == "conf-dir").effective
        bin_ = next(s for s in settings if s.role == "bin-dir").effective
        chroot = bool(by_name.get("chrootDir") and by_name["chrootDir"].value)
        layout = correct(inst, dirs, files, conf, bin_, chroot)
        findings.extend(layout.findings)
        target = (
            daemon_config_target(inst, dc, node_name)
            if inst.mode == "thick"
            else daemon_config_target(inst, None, node_name)
        )
        master = inst.flag("--multus-master-cni-file-name") if inst.mode == "thin" else None
        if inst.mode == "thick" and dc is not None and dc.data is not None:
            master = dc.data.get("multusMasterCNI") if isinstance(dc.data.get("multusMasterCNI"), str) else None
        ctx = Context(inst, layout, dirs, files, node_name, target, by_name, master or None)
        setting_rows, setting_findings = check_settings(ctx)
        rows.extend(setting_rows)
        findings.extend(setting_findings)
        findings.extend(stray_configs(ctx))
        summary = pod_summary(pod, inst.container_name) if pod is not None else None
        pod_ok = None if summary is None else summary["phase"] == "Running" and summary["ready"]
        auto = by_name.get("--multus-conf-file") or by_name.get("multusConfigFile")
        cilium = next((p for p in primaries if p.kind == "cilium" and runs_on(node, p.ds)), None)
        conf_mode = (auto.effective if auto else None) or "auto"
        conf_findings = _multus_conf(ctx, pod_ok, conf_mode, snapshot, cilium)
        findings.extend(conf_findings)
        thick_auto = inst.mode == "thick" and conf_mode == "auto"
        if thick_auto and dc is not None and dc.data is not None and "M212" not in {f.code for f in conf_findings}:
            version = daemon_version_mismatch(ctx, dc.where, dc.data.get("cniVersion"))
            findings.extend([version] if version else [])
        logs = ""
        if pod is not None:
            logs = "\n".join(
                snapshot.log(inst.namespace, meta(pod, "name"), inst.container_name, prev) or ""
                for prev in (False, True)
            )
        findings.extend(check_cni_version(inst, node_name, dirs.conf_dir, files, logs))
    binaries = plugin_needs(snapshot, inst, dirs, files, layout, by_name, pod_ok, node)
    findings.extend(binaries.missing)
    findings.extend(check_kubelet_dir(inst, dirs, files))
    findings.extend(check_pod(inst, node_name, pod, bool(snapshot.pods)))
    findings.extend(check_start_errors(inst, node_name, pod))
    socket_setting = by_name.get("daemonSocketDir")
    socket_dir = socket_setting.effective if socket_setting else None
    down = next((i for i, f in enumerate(findings) if f.code == "M201"), None)
    absent = socket_absent(inst, files, socket_dir)
    if down is not None and absent:
        # the daemon is down, so its socket is gone too: what the shim's "no such file" means
        evidence = (*findings[down].evidence, absent + ": every pod's network setup on this node fails")
        findings[down] = replace(findings[down], evidence=evidence)
    findings.extend(check_socket(inst, None if down is not None else files, socket_dir, pod_logs(snapshot, inst, pod)))
    volumes = {}
    for s in settings:
        loc = inst.mounts.resolve(s.effective) if s.effective and s.effective.startswith("/") else None
        if loc is not None and loc.mount is not None:
            volumes[s.name] = loc.mount.volume.name
    all_hits = log_hits(snapshot, inst, pod)
    findings, hits = attach_find_failures(findings, all_hits, binaries)
    findings = _attach_logs(findings, hits, inst, node_name, volumes)
    why = _no_primary(inst, dirs, files, all_hits, findings)
    if why:
        multus = [i.ds for i in find_installs(snapshot)]
        findings.append(check_primary_down(snapshot, multus, node, runs_on, why))
    if node_name in snapshot.node_errors:
        files_state = f"unreadable: {snapshot.node_errors[node_name]}"
        findings.append(
            Finding(
                "M900",
                Severity.WARNING,
                f"node {node_name} could not be inspected: {snapshot.node_errors[node_name]}",
                object=f"Node {node_name}",
                remediation="existence checks were skipped on this node",
            )
        )
    elif files is None:
        files_state = "not captured"
        findings.append(
            Finding(
                "M901",
                Severity.INFO,
                "the node's files are not in the snapshot: existence checks skipped",
                object=f"Node {node_name}",
            )
        )
    else:
        files_state = "checked"
    report = NodeReport(
        node_name,
        dirs.distro.name,
        dirs.conf_dir,
        dirs.bin_dir,
        dirs.source,
        pod_summary(pod, inst.container_name) if snapshot.pods else {},
        files_state,
        dc.where if dc else None,
        tuple(rows),
    )
    return report, [f.with_nodes((node_name,)) for f in findings]


def merge(findings: list[Finding]) -> list[Finding]:
    """One finding per distinct fact, naming every node it holds on."""
    merged: dict[tuple[object, ...], Finding] = {}
    for f in findings:
        key = f.merge_key()
        if key in merged:
            nodes = tuple(sorted(set(merged[key].nodes) | set(f.nodes)))
            merged[key] = merged[key].with_nodes(nodes)
        else:
            merged[key] = f
    return sorted(merged.values(), key=sort_key)


def _config_home(inst: Install) -> Target | None:
    """Where a thick install's daemon config lives when it is a ConfigMap key (the place legacy flags move to)."""
    if inst.mode != "thick":
        return None
    loc = inst.mounts.resolve(inst.daemon_config_path)
    if loc.kind == "configMap" and loc.config_map and loc.key:
        return Target("ConfigMap", inst.namespace, loc.config_map, key=loc.key)
    return None


def diagnose(snapshot: Snapshot, namespace: str | None = None) -> Report:
    installs = find_installs(snapshot, namespace)
    if not installs:
        where = f"namespace {namespace}" if namespace else "any namespace"
        raise MultusNotFound(f"Multus not found: no DaemonSet in {where} runs thin_entrypoint or multus-daemon")
    findings: list[Finding] = []
    if len(installs) > 1:
        refs = ", ".join(i.ref for i in installs)
        findings.append(
            Finding(
                "M001",
                Severity.WARNING,
                f"{len(installs)} Multus installs: {refs}",
                evidence=tuple(i.ref for i in installs),
                remediation="keep one; each rewrites 00-multus.conf on every node it runs on",
            )
        )
    reports = []
    for inst in installs:
        pods = pods_of(snapshot, inst)
        names = [meta(n, "name") for n in snapshot.nodes if runs_on(n, inst.ds)]
        names = sorted(set(names) | set(pods)) if snapshot.pods else sorted(set(names))
        if not names:
            raise NothingToCheck(
                f"no nodes to check for {inst.ref}: the snapshot holds no Node objects (add `kubectl get nodes -o yaml`)"
            )
        for conflict in inst.conflicts:
            findings.append(
                Finding(
                    "M002",
                    Severity.WARNING,
                    f"{inst.ref} mixes thin and thick: {conflict}",
                    object=inst.ref,
                    field=f"container {inst.container_name}",
                    remediation="deploy one mode's manifest unchanged: thin (/thin_entrypoint) or thick (multus-daemon)",
                )
            )
        findings.append(check_resources(inst))
        findings.extend(check_flags(inst, _config_home(inst)))
        findings.extend(check_image_flavour(inst))
        findings.extend(check_propagation(inst))
        node_reports = []
        all_pods = all_pods_of(snapshot, inst)
        killed = []
        refused = []
        for name in names:
            report, node_findings = diagnose_node(snapshot, inst, name, pods.get(name))
            node_reports.append(report)
            findings.extend(node_findings)
            for pod in [p for n, p in all_pods if n == name]:  # an evicted one beside its replacement too
                killed += kill_evidence(inst, name, pod, pod_logs(snapshot, inst, pod))
            refused += denials(snapshot, inst, name, pods.get(name))
        # One DaemonSet serves every node: what some nodes show is fixed for all of them. An image
        # without the command fails on every node, whichever ones have shown it yet.
        findings = [f.with_nodes(()) if f.code == "M307" and f.changes else f for f in findings]
        findings.extend(check_killed_burstable(inst, killed))
        findings.extend(check_host_writes(inst, refused))
        reports.append(InstallReport(inst, tuple(node_reports)))
    findings.extend(check_attachments(snapshot))
    merged = merge(findings)
    unknown = {f.code for f in merged} - set(CATALOGUE)
    assert not unknown, f"finding codes missing from the catalogue: {unknown}"
    return Report(snapshot.source, tuple(reports), tuple(merged))
