"""The API surface the simulated server serves: resource kinds, and errors shaped like the real ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """As RBAC and error messages name it: `pods`, `daemonsets.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILTIN = (
    Kind("", "v1", "nodes", "Node", False, ("no",)),
    Kind("", "v1", "namespaces", "Namespace", False, ("ns",)),
    Kind("", "v1", "pods", "Pod", True, ("po",)),
    Kind("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Kind("", "v1", "events", "Event", True, ("ev",)),
    Kind("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",)),
    Kind("apps", "v1", "deployments", "Deployment", True, ("deploy",)),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False, ("crd",)),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
)

# Custom resources later issues read; served only while their CRD exists, as on a real cluster.
KNOWN_CUSTOM = (
    Kind(
        "k8s.cni.cncf.io",
        "v1",
        "network-attachment-definitions",
        "NetworkAttachmentDefinition",
        True,
        ("net-attach-def",),
    ),
    Kind("helm.cattle.io", "v1", "helmcharts", "HelmChart", True),
    Kind("helm.cattle.io", "v1", "helmchartconfigs", "HelmChartConfig", True),
    Kind("operator.openshift.io", "v1", "networks", "Network", False),
)


def kind_from_crd(crd: dict[str, Any]) -> Kind:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v.get("name") for v in spec.get("versions") or [] if v.get("served", True)]
    return Kind(
        spec.get("group", ""),
        versions[0] if versions else "v1",
        names.get("plural", ""),
        names.get("kind", ""),
        spec.get("scope", "Namespaced") == "Namespaced",
        tuple(names.get("shortNames") or ()),
    )


def crd_for(kind: Kind) -> dict[str, Any]:
    """A minimal CRD object that makes `kind` served."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{kind.group}"},
        "spec": {
            "group": kind.group,
            "names": {
                "plural": kind.plural,
                "kind": kind.kind,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short),
            },
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "versions": [
                {
                    "name": kind.version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


class ApiError(Exception):
    """An error the server answers with a `Status` object, as kube-apiserver does."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{kind.resource} "{name}" not found', {"name": name, "group": kind.group, "kind": kind.plural}
    )


def already_exists(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{kind.resource} "{name}" already exists',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def conflict(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.resource} "{name}": the object has been modified; please apply your changes to the latest version and try again',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def invalid(kind: Kind, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 with one cause per (field, message), e.g. ("spec.containers", "Required value")."""
    text = ", ".join(f"{field}: {msg}" for field, msg in causes)
    return ApiError(
        422,
        "Invalid",
        f'{kind.kind} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": field} for field, msg in causes],
        },
    )


def forbidden(kind: Kind, name: str, why: str) -> ApiError:
    target = f'{kind.resource} "{name}"' if name else kind.resource
    return ApiError(
        403, "Forbidden", f"{target} is forbidden: {why}", {"name": name, "group": kind.group, "kind": kind.plural}
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)
