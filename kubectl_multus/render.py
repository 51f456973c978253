"""Reports as text for people and as JSON/YAML for machines. One model, several renderings."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from kubectl_multus.core.diagnose import NodeReport, Report
from kubectl_multus.core.findings import Change, Finding, Severity
from kubectl_multus.core.fixplan import FixPlan
from kubectl_multus.core.pathchecks import PathRow

SCHEMA = "kubectl-multus/v1"
COLORS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.INFO: "36"}


def use_color(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    from tabulate import tabulate  # imported here: --help stays fast

    return str(tabulate(rows, headers=list(headers), tablefmt="plain", disable_numparse=True))


# ---------------------------------------------------------------- data (json/yaml)


def change_data(ch: Change) -> dict[str, Any]:
    t = ch.target
    target: dict[str, Any] = {"kind": t.kind}
    if t.kind == "NodeFile":
        target.update(node=t.node, path=t.path)
    else:
        target.update(namespace=t.namespace, name=t.name)
        if t.key:
            target["key"] = t.key
    out = {"target": target, "key": ch.key, "current": ch.current, "value": ch.value}
    if ch.container:
        out["container"] = ch.container
    return out


def finding_data(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": str(f.severity),
        "title": f.title,
        "message": f.message,
        "nodes": list(f.nodes),
        "object": f.object,
        "field": f.field,
        "current": f.current,
        "expected": f.expected,
        "evidence": list(f.evidence),
        "remediation": f.remediation,
        "changes": [change_data(c) for c in f.changes],
    }


def row_data(r: PathRow) -> dict[str, Any]:
    return {
        "setting": r.setting,
        "world": r.world,
        "configured": r.configured,
        "default": r.is_default,
        "resolvesTo": r.resolves_to,
        "hostPath": r.host_path,
        "expected": r.expected,
        "exists": r.exists,
        "ok": r.ok,
    }


def node_data(n: NodeReport, rows: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": n.name,
        "distribution": n.distribution,
        "cniConfDir": n.conf_dir,
        "cniBinDir": n.bin_dir,
        "dirsSource": n.dirs_source,
        "pod": dict(n.pod) or None,
        "files": n.files,
        "daemonConfig": n.daemon_config,
    }
    if rows:
        out["paths"] = [row_data(r) for r in n.rows]
    return out


def report_data(report: Report, status: int, rows: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": SCHEMA,
        "kind": "PathReport" if rows else "Diagnosis",
        "source": report.source,
        "status": "healthy" if report.healthy else "problems",
        "exitCode": int(status),
        "installs": [
            {
                "namespace": i.install.namespace,
                "name": i.install.name,
                "mode": i.install.mode,
                "entrypoint": i.install.entrypoint,
                "container": i.install.container_name,
                "image": i.install.image,
                "version": i.install.version,
                "nodes": [node_data(n, rows) for n in i.nodes],
            }
            for i in report.installs
        ],
        "findings": [finding_data(f) for f in report.findings],
    }


def plan_data(plan: FixPlan, report: Report, status: int) -> dict[str, Any]:
    return {
        "apiVersion": SCHEMA,
        "kind": "FixPlan",
        "source": report.source,
        "exitCode": int(status),
        "targets": [
            {
                "target": change_data(item.changes[0])["target"],
                "restart": item.restart,
                "changes": [change_data(c) for c in item.changes],
                "diff": item.diff,
                "after": item.after,
            }
            for item in plan.items
        ],
        "conflicts": list(plan.conflicts),
        "manual": list(plan.manual),
        "heldBack": list(plan.held_back),
    }


def dump(data: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False, width=120))


# ---------------------------------------------------------------- text


def _nodes_label(nodes: Sequence[str], all_nodes: int) -> str:
    if not nodes:
        return "cluster"
    if len(nodes) == all_nodes and all_nodes > 1:
        return f"all ({all_nodes})"
    return ",".join(nodes) if len(nodes) <= 3 else f"{','.join(nodes[:3])},+{len(nodes) - 3}"


def _pod_text(pod: Any) -> str:
    if not pod:
        return "-"
    if pod.get("state") == "no pod":
        return "none"
    return f"{pod['state']} ({pod['restarts']} restarts)" if pod["restarts"] else str(pod["state"])


def install_header(report: Report) -> list[str]:
    lines = [f"Source: {report.source}"]
    for i in report.installs:
        inst = i.install
        lines.append(
            f"Multus: {inst.ref}, {inst.mode} ({inst.entrypoint}), container {inst.container_name}, image {inst.image}"
        )
        rows = [[n.name, n.distribution, n.conf_dir, n.bin_dir, _pod_text(n.pod), n.files] for n in i.nodes]
        lines += ["", table(rows, ["NODE", "DISTRIBUTION", "CNI CONF DIR", "CNI BIN DIR", "MULTUS POD", "NODE FILES"])]
    return lines


def diagnosis_text(
    report: Report, color: bool, wide: bool = False, follow_up: str = "kubectl multus fix --dry-run"
) -> str:
    nodes = sum(len(i.nodes) for i in report.installs)
    lines = [*install_header(report), ""]
    if not report.findings:
        return "\n".join([*lines, "No problems found."]) + "\n"
    rows = [
        [
            _paint(str(f.severity), COLORS[f.severity], color),
            f.code,
            _nodes_label(f.nodes, nodes),
            f.field or f.object,
            f.title,
        ]
        for f in report.findings
    ]
    lines += [table(rows, ["SEVERITY", "CODE", "NODES", "WHERE", "PROBLEM"]), ""]
    for f in report.findings:
        if f.severity == Severity.INFO and not wide:
            lines += [f"{f.code} info: {f.message}", ""]
            continue
        head = f"{f.code} {_paint(str(f.severity), COLORS[f.severity], color)}: {f.title}"
        lines.append(f"{head}  [nodes: {_nodes_label(f.nodes, nodes)}]")
        where = ", ".join(x for x in (f.object, f.field) if x)
        if where:
            lines.append(f"  where:     {where}")
        lines.append(f"  problem:   {f.message}")
        if f.current is not None or f.expected is not None:
            lines.append(f"  current:   {f.current if f.current is not None else '(not set)'}")
        if f.expected is not None:
            lines.append(f"  expected:  {f.expected}")
        for e in f.evidence:
            lines.append(f"  evidence:  {e}")
        if f.remediation:
            lines.append(f"  {'fix:' if f.changes else 'next step:':<10} {f.remediation}")
        lines.append("")
    errors = sum(f.severity == Severity.ERROR for f in report.findings)
    warnings = sum(f.severity == Severity.WARNING for f in report.findings)
    infos = sum(f.severity == Severity.INFO for f in report.findings)
    summary = f"{errors} error(s), {warnings} warning(s), {infos} info."
    if report.healthy:
        summary += " Healthy."
    elif any(f.changes for f in report.findings):
        summary += f" See the fix plan: {follow_up}"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _exists(v: bool | None) -> str:
    return "?" if v is None else "yes" if v else "NO"


def paths_text(report: Report, node: str | None, color: bool) -> str:
    lines = install_header(report)
    for i in report.installs:
        groups: dict[tuple[Any, ...], list[str]] = {}
        by_key: dict[tuple[Any, ...], NodeReport] = {}
        for n in i.nodes:
            if node and n.name != node:
                continue
            key = tuple(n.rows)
            groups.setdefault(key, []).append(n.name)
            by_key[key] = n
        for key, names in groups.items():
            n = by_key[key]
            label = "all nodes" if len(names) == len(i.nodes) and len(i.nodes) > 1 else "node " + ", ".join(names)
            lines += ["", f"{i.install.ref} on {label} ({n.distribution}; runtime dirs from {n.dirs_source}):"]
            if n.daemon_config:
                lines.append(f"daemon config: {n.daemon_config}")
            rows = []
            for r in n.rows:
                configured = (
                    "-" if r.configured is None else (f"{r.configured} (default)" if r.is_default else r.configured)
                )
                mark = "ok" if r.ok else _paint("WRONG", COLORS[Severity.ERROR], color)
                rows.append([r.setting, r.world, configured, r.resolves_to, r.expected or "-", _exists(r.exists), mark])
            if rows:
                lines.append(
                    table(
                        rows, ["SETTING", "WORLD", "CONFIGURED", "RESOLVES TO", "EXPECTED", "EXISTS ON NODE", "STATUS"]
                    )
                )
            else:
                lines.append("no settings could be read (see diagnose)")
    return "\n".join(lines) + "\n"


def plan_text(plan: FixPlan, color: bool) -> str:
    lines: list[str] = []
    if not plan.items and not plan.conflicts and not plan.manual and not plan.held_back:
        return "Nothing to fix.\n"
    for item in plan.items:
        lines.append(f"# {item.target}")
        lines.append(f"# restart: {item.restart}")
        for ch in item.changes:
            lines.append(
                f"#   {ch.key}: {ch.current if ch.current is not None else '(not set)'} -> "
                f"{ch.value if ch.value is not None else '(remove)'}"
            )
        for line in item.diff.splitlines():
            code = "32" if line.startswith("+") else "31" if line.startswith("-") else ""
            lines.append(_paint(line, code, color) if code and not line.startswith(("+++", "---")) else line)
        lines.append("")
    for c in plan.held_back:
        lines.append(f"held back (cluster-wide, not applied with --node; run fix without --node): {c}")
    for c in plan.conflicts:
        lines.append(f"conflict: {c}")
    for m in plan.manual:
        lines.append(f"by hand: {m}")
    return "\n".join(lines).rstrip("\n") + "\n"


AREAS = {
    "M0": "The install",
    "M1": "Settings and paths",
    "M2": "On each node: the Multus pod, its logs and the files it writes",
    "M3": "The Multus container: memory, QoS, image, mounts",
    "M4": "CNI plugins and NetworkAttachmentDefinitions",
    "M9": "What could not be checked",
}


def catalogue_markdown() -> str:
    """docs/findings.md: every finding code (regenerate with `python scripts/render-docs.py`)."""
    from kubectl_multus.core.findings import CATALOGUE

    lines = [
        "# Findings catalogue",
        "",
        "Every finding `kubectl multus diagnose` can report. The code is stable; the severity is the default.",
        "Generated from `kubectl_multus/core/findings.py` by `python scripts/render-docs.py`; a test keeps it in step.",
        "",
        "| code | severity | title | what it checks | how to fix |",
        "|---|---|---|---|---|",
    ]
    for c in CATALOGUE.values():
        lines.append(f"| {c.code} | {c.severity} | {c.title} | {c.checks} | {c.fix} |")
    return "\n".join(lines) + "\n"


def checks_markdown() -> str:
    """The README's list of what diagnose checks, by area (`python scripts/render-docs.py`)."""
    from kubectl_multus.core.findings import CATALOGUE

    lines: list[str] = []
    for prefix, area in AREAS.items():
        codes = [c for c in CATALOGUE.values() if c.code.startswith(prefix)]
        if codes:
            lines += ["", f"**{area}**", ""]
            lines += [f"- `{c.code}` **{c.title}** ({c.severity}). Checks: {c.checks}." for c in codes]
    return "\n".join(lines[1:]) + "\n"
