"""What stands between a request and the store: RBAC, Pod Security admission, validation.

RBAC here is a deny list a test switches on (everything else is allowed, as for a cluster
admin); Pod Security follows the namespace's `pod-security.kubernetes.io/enforce` label with
the real checks for the levels, and answers with the real message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simcluster import api
from simcluster.api import Kind

USER = "kubernetes-admin"
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip


@dataclass(frozen=True)
class Deny:
    """Refuse `verb` on `resource` (e.g. "pods", "pods/exec", "daemonsets.apps"), in one namespace or all."""

    verb: str
    resource: str
    namespace: str | None = None

    def matches(self, verb: str, resource: str, namespace: str) -> bool:
        return (
            self.verb in (verb, "*")
            and self.resource in (resource, "*")
            and (self.namespace is None or self.namespace == namespace)
        )


def rbac_message(verb: str, resource: str, namespace: str) -> str:
    plural, _, group = resource.partition("/")[0].partition(".")
    sub = resource.partition("/")[2]
    res = f"{plural}/{sub}" if sub else plural
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return f'User "{USER}" cannot {verb} resource "{res}" in API group "{group}" {where}'


def check_rbac(denies: list[Deny], verb: str, kind: Kind, sub: str, namespace: str, name: str) -> None:
    resource = kind.resource + (f"/{sub}" if sub else "")
    if any(d.matches(verb, resource, namespace) for d in denies):
        raise api.forbidden(kind, name, rbac_message(verb, resource, namespace))


def access_review(denies: list[Deny], attrs: dict[str, Any]) -> dict[str, Any]:
    """The `status` of a SelfSubjectAccessReview for `spec.resourceAttributes`."""
    group = attrs.get("group", "")
    resource = attrs.get("resource", "") + (f".{group}" if group else "")
    if attrs.get("subresource"):
        resource += "/" + attrs["subresource"]
    ns = attrs.get("namespace", "")
    verb = attrs.get("verb", "")
    if any(d.matches(verb, resource, ns) for d in denies):
        return {"allowed": False, "reason": rbac_message(verb, resource, ns)}
    return {
        "allowed": True,
        "reason": 'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to User "kubernetes-admin"',
    }


# --- Pod Security admission ---------------------------------------------------------------
def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def _baseline(spec: dict[str, Any]) -> list[str]:
    found = []
    hosts = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if hosts:
        found.append(f"host namespaces ({', '.join(hosts)})")
    paths = [f'"{v["name"]}"' for v in spec.get("volumes") or [] if "hostPath" in v]
    if paths:
        word = "volume" if len(paths) == 1 else "volumes"
        found.append(f"hostPath volumes ({word} {', '.join(paths)})")
    priv = [f'"{c["name"]}"' for c in _containers(spec) if (c.get("securityContext") or {}).get("privileged")]
    if priv:
        word = "container" if len(priv) == 1 else "containers"
        found.append(f"privileged ({word} {', '.join(priv)} must not set securityContext.privileged=true)")
    caps = sorted(
        {
            cap
            for c in _containers(spec)
            for cap in ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []
            if cap not in BASELINE_CAPS
        }
    )
    if caps:
        found.append(
            f"non-default capabilities (must not include {', '.join(repr(c) for c in caps)} in securityContext.capabilities.add)"
        )
    return found


def _restricted(spec: dict[str, Any]) -> list[str]:
    found = []
    pod_sc = spec.get("securityContext") or {}
    for c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(
                f'allowPrivilegeEscalation != false (container "{c["name"]}" must set securityContext.allowPrivilegeEscalation=false)'
            )
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            found.append(
                f'unrestricted capabilities (container "{c["name"]}" must set securityContext.capabilities.drop=["ALL"])'
            )
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            found.append(f'runAsNonRoot != true (container "{c["name"]}" must set securityContext.runAsNonRoot=true)')
    if not (
        pod_sc.get("seccompProfile")
        or all((c.get("securityContext") or {}).get("seccompProfile") for c in _containers(spec))
    ):
        found.append(
            'seccompProfile (pod or containers must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    return found


def pod_security(namespace: dict[str, Any] | None, pod: dict[str, Any]) -> None:
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
    spec = pod.get("spec") or {}
    if level == "privileged":
        return
    found = _baseline(spec) + (_restricted(spec) if level == "restricted" else [])
    if found:
        name = (pod.get("metadata") or {}).get("name", "")
        kind = Kind("", "v1", "pods", "Pod", True)
        raise api.forbidden(kind, name, f'violates PodSecurity "{level}:{version}": {", ".join(found)}')


# --- validation ---------------------------------------------------------------------------
LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _pod_spec_causes(spec: dict[str, Any], at: str) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    node = spec.get("nodeName")
    if node is not None and (not isinstance(node, str) or not NAME_RE.match(node)):
        causes.append((f"{at}.nodeName", f'Invalid value: "{node}": a lowercase RFC 1123 subdomain is required'))
    for group in ("volumes", "initContainers", "containers"):
        items = spec.get(group) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            causes.append((f"{at}.{group}", "Invalid value: must be a list of objects"))
            return causes
        for i, item in enumerate(items):
            name = item.get("name")
            if not isinstance(name, str) or not LABEL_RE.match(name) or len(name) > 63:
                causes.append(
                    (
                        f"{at}.{group}[{i}].name",
                        f"Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                    )
                )
    if not spec.get("containers"):
        causes.append((f"{at}.containers", "Required value"))
    volumes = [v.get("name") for v in spec.get("volumes") or []]
    for i, name in enumerate(volumes):
        if volumes.index(name) != i:
            causes.append((f"{at}.volumes[{i}].name", f'Duplicate value: "{name}"'))
    for group in ("initContainers", "containers"):
        for ci, c in enumerate(spec.get(group) or []):
            if not c.get("name"):
                causes.append((f"{at}.{group}[{ci}].name", "Required value"))
            if not c.get("image"):
                causes.append((f"{at}.{group}[{ci}].image", "Required value"))
            paths: list[str] = []
            for mi, m in enumerate(c.get("volumeMounts") or []):
                if m.get("name") not in volumes:
                    causes.append((f"{at}.{group}[{ci}].volumeMounts[{mi}].name", f'Not found: "{m.get("name")}"'))
                path = m.get("mountPath", "")
                if not path:
                    causes.append((f"{at}.{group}[{ci}].volumeMounts[{mi}].mountPath", "Required value"))
                elif path in paths:
                    causes.append(
                        (f"{at}.{group}[{ci}].volumeMounts[{mi}].mountPath", f'Invalid value: "{path}": must be unique')
                    )
                paths.append(path)
    for vi, v in enumerate(spec.get("volumes") or []):
        host = v.get("hostPath")
        if host is not None and not str(host.get("path", "")):
            causes.append((f"{at}.volumes[{vi}].hostPath.path", "Required value"))
    return causes


def validate(kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    causes: list[tuple[str, str]] = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif not NAME_RE.match(name) or len(name) > 253:
        causes.append(
            (
                "metadata.name",
                f"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    if kind.kind == "Pod":
        causes += _pod_spec_causes(obj.get("spec") or {}, "spec")
        if old is not None and _strip_mutable(old.get("spec")) != _strip_mutable(obj.get("spec")):
            causes.append(
                (
                    "spec",
                    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                )
            )
    if kind.kind == "DaemonSet":
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        causes += _pod_spec_causes(template.get("spec") or {}, "spec.template.spec")
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            causes.append(("spec.template.metadata.labels", "Invalid value: selector does not match template labels"))
        if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
            causes.append(("spec.selector", "Invalid value: field is immutable"))
    if kind.kind in ("ConfigMap", "Secret"):
        for key in obj.get("data") or {}:
            if not re.match(r"^[-._a-zA-Z0-9]+$", key):
                causes.append(
                    (
                        f"data[{key}]",
                        f"Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
    if causes:
        raise api.invalid(kind, name, causes)


def _strip_mutable(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    rest = {
        k: v
        for k, v in spec.items()
        if k not in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
    }
    for group in ("containers", "initContainers"):
        if group in rest:
            rest[group] = [{k: v for k, v in c.items() if k != "image"} for c in rest[group]]
    return rest
