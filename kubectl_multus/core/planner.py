"""Turn a diagnosis into a fix plan: each target's content before and after, as a diff."""

from __future__ import annotations

from kubectl_multus.core.diagnose import Report
from kubectl_multus.core.findings import Change, Finding, Target
from kubectl_multus.core.fixplan import (
    FixPlan,
    TargetPlan,
    apply_to_daemonset,
    apply_to_json,
    clean_object,
    collect_changes,
    unified_diff,
)
from kubectl_multus.core.snapshot import Snapshot, configmap_text


def dump_yaml(obj: object) -> str:
    import yaml

    return str(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=120))


def _restart(target: Target, report: Report) -> str:
    inst = next((i.install for i in report.installs if i.install.namespace == target.namespace), None)
    ds = inst.name if inst else "<multus daemonset>"
    if target.kind == "DaemonSet":
        return f"rolling update of DaemonSet {target.namespace}/{target.name}: every Multus pod restarts"
    if target.kind == "ConfigMap":
        ns = target.namespace
        return f"the daemon reads its config only at start: restart every Multus pod (kubectl -n {ns} rollout restart ds/{ds})"
    return f"restart the Multus pod on node {target.node}"


def _render(target: Target, changes: list[Change], snapshot: Snapshot, report: Report) -> TargetPlan | str:
    if target.kind == "DaemonSet":
        inst = next(
            i.install
            for i in report.installs
            if i.install.name == target.name and i.install.namespace == target.namespace
        )
        before_obj = clean_object(inst.ds)
        before = dump_yaml(before_obj)
        after = dump_yaml(clean_object(apply_to_daemonset(inst.ds, changes)))
        label = f"daemonset/{target.namespace}/{target.name}"
    elif target.kind == "ConfigMap":
        cm = snapshot.configmap(target.namespace, target.name)
        text, binary = configmap_text(cm or {}, target.key)
        if text is None or binary:
            return f"{target}: the key is {'in binaryData' if binary else 'missing'}; edit it by hand"
        before = text
        try:
            after = apply_to_json(before, changes)
        except ValueError:
            return f"{target}: its content is not valid JSON; fix it by hand first"
        label = f"configmap/{target.namespace}/{target.name}/{target.key}"
    else:
        files = snapshot.node_files.get(target.node)
        text = files.read(target.path) if files else None
        content = next((c.value for c in changes if c.key == "file" and c.value is not None), None)
        if content is not None and files is not None and (text is not None or files.exists(target.path) is False):
            # The whole file written (or put back where it is missing: before is then "").
            label = f"node/{target.node}{target.path}"
            before = text or ""
            diff = unified_diff(before, content, label)
            return TargetPlan(target, tuple(changes), before, content, diff, _restart(target, report))
        if text is None:
            return f"{target}: its content is not in the snapshot, so no diff can be shown"
        if any(c.key == "file" and c.value is None for c in changes):  # the file goes away
            label = f"node/{target.node}{target.path}"
            return TargetPlan(target, tuple(changes), text, "", unified_diff(text, "", label), _restart(target, report))
        try:
            before, after = text, apply_to_json(text, changes)
        except ValueError:
            return f"{target}: its content is not valid JSON; fix it by hand first"
        label = f"node/{target.node}{target.path}"
    return TargetPlan(
        target, tuple(changes), before, after, unified_diff(before, after, label), _restart(target, report)
    )


def _whole_cluster_only(findings: list[Finding], report: Report) -> tuple[list[Finding], list[str]]:
    """A DaemonSet or ConfigMap change serves every node of its install: one that only some
    nodes need would break the others, so it is a conflict, not a plan."""
    nodes_of = {i.install.namespace: {n.name for n in i.nodes} for i in report.installs}
    kept: list[Finding] = []
    conflicts: list[str] = []
    for f in findings:
        everyone = nodes_of.get(next((c.target.namespace for c in f.changes if c.target.cluster_wide), ""), set())
        if f.nodes and any(c.target.cluster_wide for c in f.changes) and not everyone <= set(f.nodes):
            others = ", ".join(sorted(everyone - set(f.nodes)))
            for c in f.changes:
                conflicts.append(
                    f"{c.target} {c.key}: nodes {', '.join(f.nodes)} need {c.value!r}, but {others} "
                    "work with the current value; one DaemonSet cannot serve both, split it per node pool"
                )
            continue
        kept.append(f)
    return kept, conflicts


def build_plan(report: Report, snapshot: Snapshot, node: str | None = None) -> FixPlan:
    """The plan that fixes what the report found; with `node`, only that node's files."""
    findings = [f for f in report.findings if node is None or not f.nodes or node in f.nodes]
    findings, partial = _whole_cluster_only(findings, report)
    by_target, conflicts = collect_changes(findings)
    conflicts = partial + conflicts
    items: list[TargetPlan] = []
    manual: list[str] = []
    held_back: list[str] = []
    for target, changes in by_target.items():
        if node is not None and target.cluster_wide:
            held_back.append(f"{target}: " + ", ".join(f"{c.key}={c.value}" for c in changes))
            continue
        if node is not None and target.node != node:
            continue
        rendered = _render(target, changes, snapshot, report)
        if isinstance(rendered, str):
            manual.append(rendered)
        else:
            items.append(rendered)
    for f in findings:
        if not f.changes and f.severity >= 2 and f.code not in ("M201", "M900"):
            on = f" (nodes {', '.join(f.nodes)})" if f.nodes else ""
            manual.append(f"{f.code} {f.message}" + (f" -> {f.remediation}" if f.remediation else "") + on)
    return FixPlan(tuple(items), tuple(conflicts), tuple(dict.fromkeys(manual)), tuple(held_back))


def removes(item: TargetPlan) -> bool:
    """Does this plan item delete its node file (rather than rewrite it)?"""
    return item.target.kind == "NodeFile" and any(c.key == "file" and c.value is None for c in item.changes)


def creates(item: TargetPlan) -> bool:
    """Does this plan item write a node file that is not there now (before is empty)?"""
    return (
        item.target.kind == "NodeFile"
        and item.before == ""
        and any(c.key == "file" and c.value is not None for c in item.changes)
    )


def applied(snapshot: Snapshot, plan: FixPlan) -> Snapshot:
    """The snapshot as it would be once the plan is written: what `fix` expects to verify."""
    from dataclasses import replace

    from kubectl_multus.core.snapshot import Entry, NodeFiles

    daemonsets = list(snapshot.daemonsets)
    configmaps = list(snapshot.configmaps)
    node_files = dict(snapshot.node_files)
    for item in plan.items:
        t = item.target
        if t.kind == "DaemonSet":
            daemonsets = [
                apply_to_daemonset(d, item.changes)
                if (d.get("metadata") or {}).get("name") == t.name
                and (d.get("metadata") or {}).get("namespace", "default") == t.namespace
                else d
                for d in daemonsets
            ]
        elif t.kind == "ConfigMap":
            configmaps = [
                {**c, "data": {**(c.get("data") or {}), t.key: item.after}}
                if (c.get("metadata") or {}).get("name") == t.name
                else c
                for c in configmaps
            ]
        elif removes(item):
            files = node_files[t.node]
            node_files[t.node] = NodeFiles({p: e for p, e in files.entries.items() if p != t.path}, files.roots)
        else:
            files = node_files[t.node]
            node_files[t.node] = NodeFiles({**files.entries, t.path: Entry("file", item.after)}, files.roots)
    return replace(snapshot, daemonsets=tuple(daemonsets), configmaps=tuple(configmaps), node_files=node_files)
