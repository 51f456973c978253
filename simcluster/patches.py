"""The three PATCH body formats the API server accepts for JSON, applied to plain dicts.

Which one a client sends depends on its Content-Type header. What the official python client (kubernetes 37)
sends:

* ``patch_namespaced_*`` / ``patch_*`` of built-in kinds: the generated code picks
  ``application/json-patch+json`` (``ApiClient.select_header_content_type`` returns the first JSON-ish type of
  its list), then ``rest.RESTClientObject.request`` swaps it for ``application/strategic-merge-patch+json``
  whenever the body is not a list. So a dict body means strategic merge and a list body means JSON patch,
  even if the caller forces ``_content_type='application/json-patch+json'`` with a dict.
* ``CustomObjectsApi.patch_*``: ``application/merge-patch+json`` (custom resources reject strategic merge).

Inputs are never mutated; every function returns a fresh document.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PatchError",
    "UnsupportedPatch",
    "apply_patch",
    "json_merge_patch",
    "json_patch",
    "strategic_merge_patch",
    "supports_strategic_merge",
]

_REASONS = {400: "BadRequest", 415: "UnsupportedMediaType", 422: "Invalid"}


class PatchError(ValueError):
    """A patch the API server refuses; ``code`` is the HTTP status and ``reason`` the Status reason it uses."""

    code = 422

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        return _REASONS.get(self.code, "Invalid")


class UnsupportedPatch(PatchError):
    """Strategic merge on a kind without Go struct tags (custom resources): 415 Unsupported Media Type."""

    code = 415


def _bad_request(message: str) -> PatchError:
    return PatchError(message, code=400)


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0 but True != 1, and containers compare element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --- RFC 7386: application/merge-patch+json ---------------------------------------------------------------------


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch: objects merge recursively, null removes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# --- RFC 6902: application/json-patch+json ----------------------------------------------------------------------
# Messages follow github.com/evanphx/json-patch, which the API server uses; apply failures are 422, a body that is
# not a list of operation objects is 400.


def _pointer(path: Any) -> list[str]:
    """RFC 6901 reference tokens; '' is the whole document."""
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must be empty or start with a "/": "{path}"')
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _index(token: str, size: int, path: str, *, allow_end: bool) -> int:
    """An array index token: digits without leading zeros, '-' (one past the end) only where ``allow_end``."""
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        raise PatchError(f'invalid array index "{token}" in path "{path}"')
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise PatchError(f'Unable to access invalid index: {index}: invalid index referenced in path "{path}"')
    return index


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    """The container holding the last token; it must exist for every operation."""
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and token.isascii() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    if not isinstance(node, (dict, list)):
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return node


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, op, path), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
        return parent[last]
    return parent[_index(last, len(parent), path, allow_end=False)]


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, op, path), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(last, len(parent), path, allow_end=True), value)
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document")
    parent, last = _parent(doc, tokens, op, path), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
        del parent[last]
    else:
        del parent[_index(last, len(parent), path, allow_end=False)]
    return doc


def _member(operation: Mapping[str, Any], name: str) -> Any:
    if name not in operation:
        raise PatchError(f"{operation.get('op', 'unknown')} operation, missing {name} field")
    return operation[name]


def _apply_operation(doc: Any, operation: Mapping[str, Any]) -> Any:
    op = operation.get("op")
    path = _member(operation, "path")
    if op == "add":
        return _add(doc, path, copy.deepcopy(_member(operation, "value")))
    if op == "remove":
        return _remove(doc, path)
    if op == "replace":
        _get(doc, path, "replace")  # the target must exist, unlike add
        doc = _remove(doc, path, "replace") if _pointer(path) else doc
        return _add(doc, path, copy.deepcopy(_member(operation, "value")), "replace")
    if op == "test":
        if not _json_equal(_get(doc, path, "test"), _member(operation, "value")):
            raise PatchError(f"testing value {path} failed: test failed")
        return doc
    if op in ("move", "copy"):
        source = _member(operation, "from")
        value = _get(doc, source, op)
        if op == "copy":
            return _add(doc, path, copy.deepcopy(value), op)
        if path != source and path.startswith(source + "/"):
            raise PatchError(f'move operation does not apply: "from" {source} is a prefix of "path" {path}')
        return _add(_remove(doc, source, op), path, value, op)
    raise PatchError(f"Unexpected kind: {op or 'unknown'}")


def json_patch(target: Any, ops: list[Any]) -> Any:
    """Apply RFC 6902 operations in order; any failure (including a failed ``test``) rejects the whole patch."""
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise _bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for operation in ops:
        doc = _apply_operation(doc, operation)
    return doc


# --- application/strategic-merge-patch+json ---------------------------------------------------------------------
# A port of the apply half of k8s.io/apimachinery/pkg/util/strategicpatch (mergeMap/mergeSlice) driven by a small
# hand-written table of the Go struct tags (patchStrategy/patchMergeKey) instead of reflection.

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


@dataclass(frozen=True)
class _Field:
    """Patch metadata of one field: lists merge only with ``merge`` (by ``merge_key`` for lists of maps)."""

    merge: bool = False
    merge_key: str | None = None
    fields: Mapping[str, _Field] = field(default_factory=dict)  # schema of the nested map / list elements


_Schema = Mapping[str, _Field]
_NONE = _Field()


def _struct(**fields: _Field) -> _Field:
    return _Field(fields=fields)


def _by(key: str | None, **fields: _Field) -> _Field:
    """A list with patchStrategy "merge" (and patchMergeKey ``key``; None for a set of primitives)."""
    return _Field(merge=True, merge_key=key, fields=fields)


_CONDITIONS = _by("type")
_META = _struct(finalizers=_by(None), ownerReferences=_by("uid"))
_CONTAINER: dict[str, _Field] = {
    "ports": _by("containerPort"),
    "env": _by("name"),
    "volumeMounts": _by("mountPath"),
    "volumeDevices": _by("devicePath"),
}
_POD_SPEC = _struct(
    containers=_by("name", **_CONTAINER),
    initContainers=_by("name", **_CONTAINER),
    ephemeralContainers=_by("name", **_CONTAINER),
    volumes=_by("name"),  # also "retainKeys": honoured through the $retainKeys directive kubectl sends
    imagePullSecrets=_by("name"),
    hostAliases=_by("ip"),
    topologySpreadConstraints=_by("topologyKey"),
    schedulingGates=_by("name"),
    resourceClaims=_by("name"),
)
_POD_STATUS = _struct(conditions=_CONDITIONS, podIPs=_by("ip"), hostIPs=_by("ip"))
_TEMPLATE = _struct(metadata=_META, spec=_POD_SPEC)
_WORKLOAD: _Schema = {"metadata": _META, "spec": _struct(template=_TEMPLATE), "status": _struct(conditions=_CONDITIONS)}

_KIND_SCHEMAS: dict[str, _Schema] = {
    "Pod": {"metadata": _META, "spec": _POD_SPEC, "status": _POD_STATUS},
    "PodTemplate": {"metadata": _META, "template": _TEMPLATE},
    "Deployment": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "StatefulSet": _WORKLOAD,
    "ReplicaSet": _WORKLOAD,
    "ReplicationController": _WORKLOAD,
    "Job": _WORKLOAD,
    "CronJob": {"metadata": _META, "spec": _struct(jobTemplate=_struct(spec=_struct(template=_TEMPLATE)))},
    "Node": {
        "metadata": _META,
        "spec": _struct(podCIDRs=_by(None)),
        "status": _struct(conditions=_CONDITIONS, addresses=_by("type")),
    },
    "Service": {"metadata": _META, "spec": _struct(ports=_by("port")), "status": _struct(conditions=_CONDITIONS)},
    "ServiceAccount": {"metadata": _META, "secrets": _by("name")},
    "Namespace": {"metadata": _META, "status": _struct(conditions=_CONDITIONS)},
    "PersistentVolumeClaim": {"metadata": _META, "status": _struct(conditions=_CONDITIONS)},
}
# Other built-in kinds: only ObjectMeta carries merge keys; their maps (ConfigMap data, ...) merge like any map.
_META_ONLY_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Endpoints",
        "Event",
        "LimitRange",
        "ResourceQuota",
        "PersistentVolume",
        "ControllerRevision",
        "EndpointSlice",
        "Lease",
        "PriorityClass",
        "StorageClass",
        "CSIDriver",
        "CSINode",
        "Ingress",
        "IngressClass",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "HorizontalPodAutoscaler",
    }
)


def supports_strategic_merge(kind: str) -> bool:
    """Built-in kinds have Go struct tags; custom resources (e.g. NetworkAttachmentDefinition) do not."""
    return kind in _KIND_SCHEMAS or kind in _META_ONLY_KINDS


def _schema_for(kind: str) -> _Schema:
    if kind in _KIND_SCHEMAS:
        return _KIND_SCHEMAS[kind]
    if kind in _META_ONLY_KINDS:
        return {"metadata": _META}
    # The real server's message; it does not name the kind (kubectl prefixes that client-side).
    raise UnsupportedPatch(
        f"the body of the request was in an unknown format - accepted media types include: {_ACCEPTED}"
    )


def _is_directive(key: str) -> bool:
    return key in (_PATCH, _RETAIN_KEYS) or key.startswith((_SET_ORDER, _DELETE_PRIMITIVES))


_DROP = object()  # _clean's verdict for a value that must not appear in the result


def _clean(value: Any) -> Any:
    """Patch data landing verbatim in the result loses nulls and directives (removeDirectives +
    discardNullValuesFromPatch); a map carrying ``$patch`` is dropped whole, as in k8s."""
    if isinstance(value, dict):
        return _DROP if _PATCH in value else _clean_map(value)
    if isinstance(value, list):
        return _clean_list(value)
    return value


def _clean_map(value: dict[str, Any]) -> dict[str, Any]:
    cleaned = ((k, _clean(v)) for k, v in value.items() if v is not None and not _is_directive(k))
    return {k: v for k, v in cleaned if v is not _DROP}


def _clean_list(values: list[Any]) -> list[Any]:
    return [v for v in map(_clean, values) if v is not _DROP]


def _kind(value: Any) -> type:
    """dict / list / scalar: values of different kinds are replaced rather than merged."""
    return dict if isinstance(value, dict) else list if isinstance(value, list) else object


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: _Schema) -> dict[str, Any]:
    if _PATCH in patch:
        return _map_directive(patch)
    _retain_keys(original, patch)
    _set_element_orders(original, patch, schema)
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVES):
            _delete_primitives(original, key[len(_DELETE_PRIMITIVES) :], value)
        elif value is None:
            original.pop(key, None)
        elif key not in original or _kind(original[key]) is not _kind(value):
            _put(original, key, _clean(value))
        elif isinstance(value, dict):
            original[key] = _merge_map(original[key], value, schema.get(key, _NONE).fields)
        elif isinstance(value, list):
            original[key] = _merge_list(original[key], value, schema.get(key, _NONE))
        else:
            original[key] = value
    return original


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is _DROP:
        target.pop(key, None)
    else:
        target[key] = value


def _map_directive(patch: dict[str, Any]) -> dict[str, Any]:
    """``$patch: replace`` takes the patch map as is; ``$patch: delete`` leaves an empty map (k8s semantics)."""
    directive = patch[_PATCH]
    if directive == "replace":
        return _clean_map(patch)  # also drops the $patch key itself
    if directive == "delete":
        return {}
    raise _bad_request(f"unknown patch type: {directive} in map: {patch}")


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys``: clear the original's keys missing from the list (switching a volume's source)."""
    if _RETAIN_KEYS not in patch:
        return
    keys = patch.pop(_RETAIN_KEYS)
    if not isinstance(keys, list):
        raise _bad_request("invalid patch format of retainKeys")
    for key, value in patch.items():
        if value is not None and not _is_directive(key) and key not in keys:
            raise PatchError("patch content doesn't match retainKeys list")
    for key in [k for k in original if k not in keys]:
        del original[key]


def _delete_primitives(original: dict[str, Any], key: str, values: Any) -> None:
    """``$deleteFromPrimitiveList/<key>``: remove these scalars from the list ``key``."""
    if not isinstance(values, list):
        raise _bad_request("invalid patch format of primitive list")
    current = original.get(key)
    if isinstance(current, list):
        original[key] = [v for v in current if not any(_json_equal(v, d) for d in values)]


def _merge_list(original: list[Any], patch: list[Any], meta: _Field) -> list[Any]:
    """mergeSliceHandler: lists without patchStrategy "merge" are replaced by the patch."""
    if not meta.merge:
        return _clean_list(patch)
    return _merge_slice(original, patch, meta)


def _element_kind(*lists: list[Any]) -> type | None:
    kinds = {_kind(v) for items in lists for v in items}
    if list in kinds:
        raise PatchError("lists of lists are not supported")
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {list(lists)}")
    return kinds.pop() if kinds else None


def _merge_slice(original: list[Any], patch: list[Any], meta: _Field) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind is not dict:  # a set of scalars (finalizers, podCIDRs): union
        merged = list(original)
        for value in patch:
            if not _contains(merged, value, None):
                merged.append(value)
        return _normalize_order(merged, patch, original, None)
    key = meta.merge_key
    if key is None:
        raise PatchError("cannot merge lists without merge key for type map")
    original, patch = _special_elements(original, patch, key)
    merged = _merge_by_key(original, patch, key, meta.fields)
    return _normalize_order(merged, patch, original, key)


def _key_of(item: Any, key: str) -> Any:
    if not isinstance(item, dict) or key not in item:
        raise PatchError(f"map: {item} does not contain declared merge key: {key}")
    return item[key]


def _contains(items: list[Any], value: Any, key: str | None) -> bool:
    return _position(items, value, key) >= 0


def _position(items: list[Any], value: Any, key: str | None) -> int:
    """Index of ``value`` in ``items`` (by merge key for maps), or -1."""
    wanted = value if key is None else _key_of(value, key)
    for i, item in enumerate(items):
        if _json_equal(wanted, item if key is None else _key_of(item, key)):
            return i
    return -1


def _special_elements(original: list[Any], patch: list[Any], key: str) -> tuple[list[Any], list[Any]]:
    """Apply ``$patch`` list elements: delete removes by merge key, replace makes the plain elements the list."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        directive = item.get(_PATCH)
        if _PATCH not in item:
            plain.append(item)
        elif directive == "delete":
            doomed = _key_of(item, key)
            original = [o for o in original if not _json_equal(_key_of(o, key), doomed)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_request(f"unknown patch type: {directive} in map: {item}")
    if replace:
        return _clean_list(plain), []
    return original, plain


def _merge_by_key(original: list[Any], patch: list[Any], key: str, schema: _Schema) -> list[Any]:
    """Elements with the same merge key merge recursively; new ones are appended (and reordered later)."""
    merged = list(original)
    for item in patch:
        at = _position(merged, item, key)
        if at >= 0:
            merged[at] = _merge_map(merged[at], item, schema)
        else:
            cleaned = _clean(item)
            if cleaned is not _DROP:
                merged.append(cleaned)
    return merged


def _normalize_order(merged: list[Any], order: list[Any], server_order: list[Any], key: str | None) -> list[Any]:
    """normalizeElementOrder: items named in ``order`` follow it, the others keep their server order, and the two
    runs interleave by server position. A patch item the server did not have goes ahead of the server-only
    items still pending, so a merge that adds an element puts it first, as the real API server does."""
    in_order = [m for m in merged if _contains(order, m, key)]
    server_only = [m for m in merged if not _contains(order, m, key)]
    in_order.sort(key=lambda m: _position(order, m, key))
    server_only.sort(key=lambda m: _position(server_order, m, key))
    result: list[Any] = []
    while server_only and in_order:
        left, right = _position(server_order, server_only[0], key), _position(server_order, in_order[0], key)
        result.append(server_only.pop(0) if 0 <= left < right else in_order.pop(0))
    return result + server_only + in_order


def _set_element_orders(original: dict[str, Any], patch: dict[str, Any], schema: _Schema) -> None:
    """``$setElementOrder/<field>``: merge that list now, then impose the given order (kubectl apply sends it)."""
    for directive in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(directive)
        name = directive[len(_SET_ORDER) :]
        if not isinstance(order, list):
            raise _bad_request("invalid patch format of setElementOrder list")
        current, changes = original.get(name), patch.pop(name, None)
        if current is None and changes is None:
            continue
        if not isinstance(current or [], list) or not isinstance(changes or [], list):
            raise _bad_request("invalid patch format of setElementOrder list")
        meta = schema.get(name, _NONE)
        merged = _merge_list(current or [], changes, meta) if changes is not None else list(current or [])
        key = meta.merge_key if _element_kind(merged) is dict else None
        original[name] = _normalize_order(merged, order, current or [], key)


def strategic_merge_patch(target: Any, patch: Any, kind: str) -> Any:
    """Apply a strategic merge patch to an object of built-in ``kind`` (as ``kubectl patch`` sends by default).

    Maps merge recursively and null deletes a key; lists with a patch merge key merge element-wise (a new element
    is placed before the server's untouched ones); other lists are replaced. Directives: ``$patch`` (replace /
    delete, in maps and list elements), ``$setElementOrder/``, ``$deleteFromPrimitiveList/``, ``$retainKeys``.
    Raises UnsupportedPatch (415) for kinds without strategic-merge metadata, i.e. custom resources.
    """
    schema = _schema_for(kind)
    if not isinstance(patch, dict) or not isinstance(target, dict):
        raise _bad_request("invalid JSON document")
    return _merge_map(copy.deepcopy(target), copy.deepcopy(patch), schema)


# --- dispatch on Content-Type -----------------------------------------------------------------------------------

_ACCEPTED = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"


def apply_patch(target: Any, patch: Any, content_type: str, kind: str) -> Any:
    """Apply a PATCH body by its Content-Type (parameters such as ``; charset=utf-8`` are ignored).

    Server-side apply (application/apply-patch+yaml) is not simulated: it raises UnsupportedPatch like an unknown type.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json-patch+json":
        return json_patch(target, patch)
    if media_type == "application/merge-patch+json":
        return json_merge_patch(target, patch)
    if media_type == "application/strategic-merge-patch+json":
        return strategic_merge_patch(target, patch, kind)
    raise UnsupportedPatch(
        f"the body of the request was in an unknown format - accepted media types include: {_ACCEPTED}"
    )
