"""Who else manages the Multus objects: a direct patch to something Helm, the k3s/RKE2 Helm
controller or OpenShift's network operator owns is reverted at their next upgrade or
reconcile. Say so, and say what makes the change last."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_multus.core.findings import Change
from kubectl_multus.core.install import Install, flag_value
from kubectl_multus.core.paths import norm
from kubectl_multus.core.snapshot import Obj, meta

# rke2-multus (and the k3s docs' install of it): chart values behind thin flags (the chart
# writes "/host" + value into the args and uses the raw value as hostPath).
THIN_VALUES = {
    "--cni-conf-dir": "config.cni_conf.confDir",
    "--cni-bin-dir": "config.cni_conf.binDir",
    "--multus-autoconfig-dir": "config.cni_conf.multusAutoconfigDir",
    "--multus-kubeconfig-file-host": "config.cni_conf.kubeconfig",
    "--readiness-indicator-file": "config.cni_conf.readinessIndicatorFile",
    "--additional-bin-dir": "config.cni_conf.additionalBinDir",
}


@dataclass(frozen=True)
class Owner:
    kind: str  # helm | helmchart | operator
    name: str  # release, HelmChart or operator
    namespace: str

    def __str__(self) -> str:
        return {
            "helm": f"Helm release {self.namespace}/{self.name}",
            "helmchart": f"HelmChart {self.namespace}/{self.name} (the k3s/RKE2 Helm controller)",
            "operator": "OpenShift's cluster network operator",
        }[self.kind]


def owner(obj: Obj, others: Iterable[Obj] = ()) -> Owner | None:
    md = obj.get("metadata") or {}
    labels: Mapping[str, str] = md.get("labels") or {}
    annotations: Mapping[str, str] = md.get("annotations") or {}
    ns = meta(obj, "namespace", "default")
    refs = md.get("ownerReferences") or []
    if ns.startswith("openshift-") or any(
        r.get("kind") == "Network" and "openshift" in str(r.get("apiVersion")) for r in refs
    ):
        return Owner("operator", "cluster-network-operator", ns)
    release = annotations.get("meta.helm.sh/release-name") or (
        labels.get("release") if labels.get("heritage") == "Helm" else None
    )
    if release or labels.get("app.kubernetes.io/managed-by") == "Helm":
        name = release or labels.get("app.kubernetes.io/instance") or meta(obj, "name")
        release_ns = annotations.get("meta.helm.sh/release-namespace", ns)
        charts = {
            (meta(o, "namespace", "kube-system"), meta(o, "name")) for o in others if o.get("kind") == "HelmChart"
        }
        if any(n == name for _, n in charts):
            chart_ns = next(cns for cns, n in charts if n == name)
            return Owner("helmchart", name, chart_ns)
        return Owner("helm", name, release_ns)
    return None


def _host(value: str | None) -> str | None:
    """The chart value behind a thin flag: the host path, without the chart's "/host" prefix."""
    if value is None:
        return None
    return value[len("/host") :] if value.startswith("/host/") else value


def chart_values(inst: Install, changes: Iterable[Change]) -> dict[str, str]:
    """Chart values (dotted keys) that carry the given changes, for the rke2-multus chart."""
    out: dict[str, str] = {}
    for ch in changes:
        if ch.key.startswith("ds.arg."):
            flag = ch.key[len("ds.arg.") :]
            if flag in THIN_VALUES and ch.value is not None:
                value = (
                    _host(ch.value)
                    if flag in ("--cni-conf-dir", "--cni-bin-dir", "--multus-autoconfig-dir")
                    else ch.value
                )
                out[THIN_VALUES[flag]] = value or ch.value
        elif ch.key.startswith("ds.volume.") and ch.key.endswith(".hostPath") and ch.value:
            volume = ch.key[len("ds.volume.") : -len(".hostPath")]
            key = {"cni": "config.cni_conf.confDir", "cnibin": "config.cni_conf.binDir"}.get(volume)
            if key:
                out[key] = posixpath.normpath(ch.value)
            # The chart renders --multus-autoconfig-dir from its own value: when it named the old
            # conf dir, a new confDir alone leaves it under no mount after the next reconcile.
            auto = _host(flag_value(inst.args, "--multus-autoconfig-dir"))
            if key == "config.cni_conf.confDir" and auto and ch.current and norm(auto) == norm(ch.current):
                out.setdefault("config.cni_conf.multusAutoconfigDir", posixpath.normpath(ch.value))
        elif ch.key.startswith("daemon_config.") and ch.value is not None:
            out["config.daemon_conf." + ch.key[len("daemon_config.") :]] = ch.value
    if "config.cni_conf.confDir" in out and flag_value(inst.args, "--multus-kubeconfig-file-host") is None:
        out.setdefault("config.cni_conf.kubeconfig", out["config.cni_conf.confDir"] + "/multus.d/multus.kubeconfig")
    return out


def nested(values: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in sorted(values.items()):
        node = tree
        *path, last = dotted.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def persistent_change(own: Owner, values: Mapping[str, str]) -> str:
    """What to run or apply so the fix survives the owner's next reconcile."""
    if own.kind == "operator":
        return "change it through the operator: edit network.operator.openshift.io/cluster (spec.additionalNetworks / defaultNetwork), not the DaemonSet"
    if not values:
        return f"set the matching values in {own} so its next upgrade keeps the fix"
    if own.kind == "helm":
        sets = " ".join(f"--set {k}={v}" for k, v in sorted(values.items()))
        return f"helm upgrade {own.name} <chart> -n {own.namespace} --reuse-values {sets}"
    return helm_chart_config(own, values)


def helm_chart_config(own: Owner, values: Mapping[str, str]) -> str:
    import yaml

    doc = {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChartConfig",
        "metadata": {"name": own.name, "namespace": own.namespace},
        "spec": {"valuesContent": yaml.safe_dump(nested(values), sort_keys=True)},
    }

    class Dumper(yaml.SafeDumper):
        pass

    def block(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)

    Dumper.add_representer(str, block)
    return str(yaml.dump(doc, Dumper=Dumper, sort_keys=False))
