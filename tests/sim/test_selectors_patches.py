"""Object semantics of the simulated API server: selectors, scheduling predicates and the three patch formats."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from simcluster.patches import (
    PatchError,
    UnsupportedPatch,
    apply_patch,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
    supports_strategic_merge,
)
from simcluster.selectors import (
    SelectorError,
    label_selector_from_object,
    node_selector_matches,
    parse_field_selector,
    parse_label_selector,
    tolerates,
)

# --- label selectors --------------------------------------------------------------------------------------------

LABEL_MATCHES = [
    ("", {}, True),
    ("", {"any": "thing"}, True),
    ("app=multus", {"app": "multus"}, True),
    ("app=multus", {"app": "other"}, False),
    ("app=multus", {}, False),
    ("app==multus", {"app": "multus"}, True),
    ("app!=multus", {}, True),
    ("app!=multus", {"app": "multus"}, False),
    ("tier in (a,b)", {"tier": "b"}, True),
    ("tier in (a,b)", {"tier": "c"}, False),
    ("tier in (a,b)", {}, False),
    ("tier notin (a,b)", {}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("app", {"app": ""}, True),
    ("app", {}, False),
    ("!app", {}, True),
    ("!app", {"app": "x"}, False),
    ("app=multus,tier in (a),!legacy", {"app": "multus", "tier": "a"}, True),
    ("app=multus,tier in (a),!legacy", {"app": "multus", "tier": "a", "legacy": "1"}, False),
    ("  app = multus ,  tier notin ( x , y )  ", {"app": "multus", "tier": "z"}, True),
    ("x in (a,)", {"x": ""}, True),
    ("x in ()", {"x": ""}, True),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("gen>3", {"gen": "4"}, True),
    ("gen>3", {"gen": "3"}, False),
    ("gen>3", {"gen": "many"}, False),
    ("gen>3", {}, False),
    ("gen<3", {"gen": "-1"}, True),
    ("example.com/role=cni", {"example.com/role": "cni"}, True),
    ("in in (in)", {"in": "in"}, True),
]


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    LABEL_MATCHES,
    ids=[
        f"{t or 'empty'} @ {','.join(f'{k}={v}' for k, v in lbl.items()) or 'no-labels'}" for t, lbl, _ in LABEL_MATCHES
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


LABEL_ERRORS = [
    ("a in", "unable to parse requirement: found '' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a=b,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a>b", "for 'Gt', 'Lt' operators, the value must be an integer"),
    ("-a=b", 'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of alphanumeric'),
    ("a=b@", 'values[0][a]: Invalid value: "b@": a valid label must be an empty string'),
    ("Example.com/a=b", 'Invalid value: "Example.com/a": prefix part a lowercase RFC 1123 subdomain'),
]


@pytest.mark.parametrize(("text", "message"), LABEL_ERRORS, ids=[t for t, _ in LABEL_ERRORS])
def test_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert message in str(err.value)


OBJECT_SELECTORS: list[tuple[str, dict[str, Any] | None, dict[str, str], bool]] = [
    ("empty-matches-all", {}, {"x": "y"}, True),
    ("null-matches-nothing", None, {}, False),
    ("matchLabels", {"matchLabels": {"name": "multus"}}, {"name": "multus", "x": "y"}, True),
    ("matchLabels-miss", {"matchLabels": {"name": "multus"}}, {"name": "flannel"}, False),
    (
        "expressions",
        {
            "matchLabels": {"app": "cni"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "old", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "arch", "operator": "NotIn", "values": ["arm"]},
            ],
        },
        {"app": "cni", "tier": "b", "zone": "z1"},
        True,
    ),
    ("expressions-miss", {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
]


@pytest.mark.parametrize(
    ("sel", "labels", "expected"), [c[1:] for c in OBJECT_SELECTORS], ids=[c[0] for c in OBJECT_SELECTORS]
)
def test_label_selector_from_object(sel: dict[str, Any] | None, labels: dict[str, str], expected: bool) -> None:
    assert label_selector_from_object(sel).matches(labels) is expected


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, '"Gt" is not a valid label selector'),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "values set must be empty"),
        ({"matchLabels": {"a": "bad value"}}, 'Invalid value: "bad value"'),
    ],
    ids=["gt-not-allowed", "in-without-values", "exists-with-values", "bad-matchLabels-value"],
)
def test_label_selector_from_object_errors(sel: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        label_selector_from_object(sel)


# --- field selectors --------------------------------------------------------------------------------------------

POD_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.hostNetwork")
RUNNING = {
    "metadata": {"name": "multus-abc", "namespace": "kube-system"},
    "spec": {"nodeName": "node1"},
    "status": {"phase": "Running"},
}
PENDING = {"metadata": {"name": "web", "namespace": "default"}, "spec": {}, "status": {"phase": "Pending"}}

FIELD_MATCHES = [
    ("", RUNNING, True),
    ("metadata.name=multus-abc", RUNNING, True),
    ("metadata.name==multus-abc", RUNNING, True),
    ("metadata.name=web", RUNNING, False),
    ("status.phase!=Running", RUNNING, False),
    ("status.phase!=Running", PENDING, True),
    ("spec.nodeName=", PENDING, True),
    ("spec.nodeName=", RUNNING, False),
    ("spec.nodeName!=", RUNNING, True),
    ("metadata.namespace=kube-system,spec.nodeName=node1", RUNNING, True),
    ("metadata.namespace=kube-system,spec.nodeName=node2", RUNNING, False),
    ("spec.hostNetwork=false", PENDING, True),
    ("metadata.name=a\\,b\\=c", {"metadata": {"name": "a,b=c"}}, True),
]


@pytest.mark.parametrize(("text", "obj", "expected"), FIELD_MATCHES, ids=[f"{t!r}" for t, _, _ in FIELD_MATCHES])
def test_field_selector_matches(text: str, obj: dict[str, Any], expected: bool) -> None:
    assert parse_field_selector(text, POD_FIELDS).matches(obj) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec.foo=bar", "field label not supported: spec.foo"),
        ("status.phase = Running", "field label not supported: status.phase "),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
        ("metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ],
    ids=["unsupported-field", "spaces-are-not-trimmed", "no-operator", "unescaped-equals", "bad-escape"],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_field_selector(text, POD_FIELDS)
    assert str(err.value) == message


def test_event_source_field_reads_the_component() -> None:
    event = {"source": {"component": "kubelet", "host": "node1"}}
    assert parse_field_selector("source=kubelet", ["source"]).matches(event)


# --- node affinity and taints -----------------------------------------------------------------------------------

NODE = {
    "metadata": {
        "name": "worker-1",
        "labels": {"kubernetes.io/os": "linux", "cpus": "8", "node-role.kubernetes.io/worker": ""},
    }
}


def _expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


NODE_TERMS: list[tuple[str, dict[str, Any], bool]] = [
    ("in", {"matchExpressions": [_expr("kubernetes.io/os", "In", "linux", "windows")]}, True),
    ("in-miss", {"matchExpressions": [_expr("kubernetes.io/os", "In", "windows")]}, False),
    ("notin-absent-label", {"matchExpressions": [_expr("zone", "NotIn", "a")]}, True),
    ("exists-empty-value", {"matchExpressions": [_expr("node-role.kubernetes.io/worker", "Exists")]}, True),
    ("doesnotexist", {"matchExpressions": [_expr("node-role.kubernetes.io/control-plane", "DoesNotExist")]}, True),
    ("gt", {"matchExpressions": [_expr("cpus", "Gt", "4")]}, True),
    ("lt", {"matchExpressions": [_expr("cpus", "Lt", "4")]}, False),
    ("gt-non-integer-label", {"matchExpressions": [_expr("kubernetes.io/os", "Gt", "1")]}, False),
    ("gt-absent-label", {"matchExpressions": [_expr("gpus", "Gt", "0")]}, False),
    ("fields-in", {"matchFields": [_expr("metadata.name", "In", "worker-1")]}, True),
    ("fields-notin", {"matchFields": [_expr("metadata.name", "NotIn", "worker-1")]}, False),
    (
        "expressions-and-fields-are-anded",
        {
            "matchExpressions": [_expr("kubernetes.io/os", "In", "linux")],
            "matchFields": [_expr("metadata.name", "In", "worker-2")],
        },
        False,
    ),
    ("empty-term-matches-nothing", {}, False),
]


@pytest.mark.parametrize(("term", "expected"), [c[1:] for c in NODE_TERMS], ids=[c[0] for c in NODE_TERMS])
def test_node_selector_term(term: dict[str, Any], expected: bool) -> None:
    assert node_selector_matches(NODE, term) is expected


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"matchExpressions": [_expr("cpus", "Gt", "1", "2")]}, "exactly one value is required"),
        ({"matchExpressions": [_expr("cpus", "Gt", "x")]}, "the value must be an integer"),
        ({"matchExpressions": [_expr("cpus", "In")]}, "values set can't be empty"),
        ({"matchExpressions": [_expr("cpus", "Near", "1")]}, 'Unsupported value: "Near"'),
        ({"matchFields": [_expr("metadata.uid", "In", "x")]}, "not a valid field selector key"),
        ({"matchFields": [_expr("metadata.name", "In", "a", "b")]}, "must be only one value"),
    ],
    ids=["gt-two-values", "gt-not-integer", "in-no-values", "unknown-operator", "field-not-name", "field-two-values"],
)
def test_node_selector_term_errors(term: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        node_selector_matches(NODE, term)


CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
DEDICATED = {"key": "dedicated", "value": "cni", "effect": "NoSchedule"}

TOLERATIONS: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], bool]] = [
    ("no-taints", [], [], True),
    ("untolerated-noschedule", [], [CONTROL_PLANE], False),
    ("untolerated-noexecute", [], [NOT_READY], False),
    ("prefernoschedule-ignored", [], [{"key": "soft", "effect": "PreferNoSchedule"}], True),
    (
        "exists-by-key",
        [{"key": CONTROL_PLANE["key"], "operator": "Exists", "effect": "NoSchedule"}],
        [CONTROL_PLANE],
        True,
    ),
    (
        "exists-wrong-effect",
        [{"key": CONTROL_PLANE["key"], "operator": "Exists", "effect": "NoExecute"}],
        [CONTROL_PLANE],
        False,
    ),
    ("exists-any-effect", [{"key": NOT_READY["key"], "operator": "Exists"}], [NOT_READY], True),
    ("empty-key-exists-tolerates-all", [{"operator": "Exists"}], [CONTROL_PLANE, NOT_READY, DEDICATED], True),
    ("equal-value", [{"key": "dedicated", "operator": "Equal", "value": "cni"}], [DEDICATED], True),
    ("equal-wrong-value", [{"key": "dedicated", "operator": "Equal", "value": "gpu"}], [DEDICATED], False),
    ("default-operator-is-equal", [{"key": "dedicated", "value": "cni"}], [DEDICATED], True),
    ("equal-empty-value", [{"key": CONTROL_PLANE["key"], "effect": "NoSchedule"}], [CONTROL_PLANE], True),
    ("one-of-two-tolerated", [{"operator": "Exists", "effect": "NoSchedule"}], [CONTROL_PLANE, NOT_READY], False),
    ("none-is-empty", [], [], True),
]


@pytest.mark.parametrize(
    ("tolerations", "taints", "expected"), [c[1:] for c in TOLERATIONS], ids=[c[0] for c in TOLERATIONS]
)
def test_tolerates(tolerations: list[dict[str, Any]], taints: list[dict[str, Any]], expected: bool) -> None:
    assert tolerates(tolerations, taints) is expected


def test_tolerates_accepts_none() -> None:
    assert tolerates(None, None) is True


# --- RFC 7386 merge patch ---------------------------------------------------------------------------------------

RFC7386 = [  # RFC 7386 Appendix A, in order
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386, ids=[f"A{i}" for i in range(1, len(RFC7386) + 1)])
def test_json_merge_patch_rfc7386_appendix(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert json_merge_patch(target, patch) == expected
    assert target == before


def test_json_merge_patch_rfc7386_section3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]}
    assert json_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


# --- RFC 6902 JSON patch ----------------------------------------------------------------------------------------

RFC6902_OK: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    ("A1-add-member", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    (
        "A2-add-array-element",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    ("A3-remove-member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    (
        "A4-remove-element",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A5-replace",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A6-move-member",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A7-move-element",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A8-test-success",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A10-add-nested",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A11-ignore-unknown-members",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    ("A14-escape-order", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    (
        "A16-append-array-value",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    ("copy", {"a": {"b": [1]}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": [1]}, "c": {"b": [1]}}),
    ("replace-root", {"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
    ("replace-last-element", {"a": [1, 2]}, [{"op": "replace", "path": "/a/1", "value": 3}], {"a": [1, 3]}),
    ("slash-escape", {}, [{"op": "add", "path": "/a~1b", "value": 1}], {"a/b": 1}),
    ("test-int-equals-float", {"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}], {"a": 1}),
    (
        "daemonset-arg",
        {"spec": {"containers": [{"args": ["--a", "--cni-bin-dir=/host/opt/cni/bin"]}]}},
        [{"op": "replace", "path": "/spec/containers/0/args/1", "value": "--cni-bin-dir=/opt/cni/bin"}],
        {"spec": {"containers": [{"args": ["--a", "--cni-bin-dir=/opt/cni/bin"]}]}},
    ),
]


@pytest.mark.parametrize(("target", "ops", "expected"), [c[1:] for c in RFC6902_OK], ids=[c[0] for c in RFC6902_OK])
def test_json_patch(target: Any, ops: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(target)
    assert json_patch(target, ops) == expected
    assert target == before


RFC6902_FAIL: list[tuple[str, Any, list[Any], str]] = [
    ("A9-test-fails", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], "testing value /baz failed"),
    ("A12-add-missing-parent", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], "missing path"),
    ("A15-string-is-not-number", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], "test failed"),
    ("test-bool-is-not-int", {"a": True}, [{"op": "test", "path": "/a", "value": 1}], "test failed"),
    ("test-missing-path", {}, [{"op": "test", "path": "/a", "value": None}], "missing path"),
    ("remove-missing", {"a": 1}, [{"op": "remove", "path": "/b"}], "remove operation does not apply"),
    ("replace-missing", {"a": 1}, [{"op": "replace", "path": "/b", "value": 2}], "replace operation does not apply"),
    ("index-out-of-range", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 2}], "invalid index"),
    ("leading-zero-index", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}], 'invalid array index "01"'),
    ("dash-only-for-add", {"a": [1]}, [{"op": "remove", "path": "/a/-"}], 'invalid array index "-"'),
    ("pointer-without-slash", {"a": 1}, [{"op": "remove", "path": "a"}], "must be empty or start with"),
    ("move-into-own-child", {"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], "is a prefix of"),
    ("unknown-op", {}, [{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
    ("missing-value", {}, [{"op": "add", "path": "/a"}], "missing value field"),
    ("missing-from", {"a": 1}, [{"op": "copy", "path": "/b"}], "missing from field"),
]


@pytest.mark.parametrize(("target", "ops", "message"), [c[1:] for c in RFC6902_FAIL], ids=[c[0] for c in RFC6902_FAIL])
def test_json_patch_errors(target: Any, ops: list[Any], message: str) -> None:
    with pytest.raises(PatchError) as err:
        json_patch(target, ops)
    assert message in str(err.value)
    assert (err.value.code, err.value.reason) == (422, "Invalid")


def test_json_patch_is_atomic() -> None:
    target = {"a": 1}
    with pytest.raises(PatchError):
        json_patch(target, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 2}])
    assert target == {"a": 1}


@pytest.mark.parametrize("body", [{"op": "add"}, ["not-an-op"]], ids=["object-body", "list-of-strings"])
def test_json_patch_malformed_body_is_bad_request(body: Any) -> None:
    with pytest.raises(PatchError) as err:
        json_patch({}, body)
    assert (err.value.code, err.value.reason) == (400, "BadRequest")


# --- strategic merge patch --------------------------------------------------------------------------------------

MULTUS_MOUNT = {"name": "cni", "mountPath": "/host/etc/cni/net.d"}
CNIBIN_MOUNT = {"name": "cnibin", "mountPath": "/host/opt/cni/bin"}
KUBE_MULTUS = {
    "name": "kube-multus",
    "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0",
    "command": ["/thin_entrypoint"],
    "args": ["--multus-conf-file=auto", "--cni-bin-dir=/host/opt/cni/bin"],
    "env": [{"name": "KUBERNETES_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    "volumeMounts": [MULTUS_MOUNT, CNIBIN_MOUNT],
}
SIDECAR = {"name": "sidecar", "image": "busybox", "args": ["sleep", "infinity"]}
CNI_VOLUME = {"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}}
CNIBIN_VOLUME = {"name": "cnibin", "hostPath": {"path": "/opt/cni/bin", "type": "Directory"}}
DAEMONSET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "kube-multus-ds", "namespace": "kube-system", "labels": {"app": "multus", "tier": "node"}},
    "spec": {
        "selector": {"matchLabels": {"name": "multus"}},
        "template": {
            "metadata": {"labels": {"name": "multus"}},
            "spec": {
                "hostNetwork": True,
                "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                "containers": [KUBE_MULTUS, SIDECAR],
                "volumes": [CNI_VOLUME, CNIBIN_VOLUME],
            },
        },
    },
}
POD_SPEC = ("spec", "template", "spec")
CONTAINERS = (*POD_SPEC, "containers")
VOLUMES = (*POD_SPEC, "volumes")
MOUNTS = (*CONTAINERS, 0, "volumeMounts")


def _template_patch(**spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def _get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _without(doc: Any, path: tuple[str | int, ...]) -> Any:
    """``doc`` with the value at ``path`` put back to DAEMONSET's, to check nothing else changed."""
    doc = copy.deepcopy(doc)
    _get(doc, path[:-1])[path[-1]] = copy.deepcopy(_get(DAEMONSET, path))
    return doc


SMP_CASES: list[tuple[str, dict[str, Any], tuple[str | int, ...], Any]] = [
    (
        "container-args-by-name-keeps-others",
        _template_patch(containers=[{"name": "kube-multus", "args": ["--cni-bin-dir=/opt/cni/bin"]}]),
        CONTAINERS,
        [{**KUBE_MULTUS, "args": ["--cni-bin-dir=/opt/cni/bin"]}, SIDECAR],
    ),
    (
        "second-container-keeps-order",
        _template_patch(containers=[{"name": "sidecar", "image": "busybox:1.36"}]),
        CONTAINERS,
        [KUBE_MULTUS, {**SIDECAR, "image": "busybox:1.36"}],
    ),
    (
        "new-container-goes-first",
        _template_patch(containers=[{"name": "new", "image": "x"}]),
        CONTAINERS,
        [{"name": "new", "image": "x"}, KUBE_MULTUS, SIDECAR],
    ),
    (
        "delete-container",
        _template_patch(containers=[{"name": "sidecar", "$patch": "delete"}]),
        CONTAINERS,
        [KUBE_MULTUS],
    ),
    (
        "null-deletes-container-field",
        _template_patch(containers=[{"name": "kube-multus", "command": None}]),
        (*CONTAINERS, 0),
        {k: v for k, v in KUBE_MULTUS.items() if k != "command"},
    ),
    (
        "env-merges-by-name",
        _template_patch(containers=[{"name": "kube-multus", "env": [{"name": "KUBERNETES_NODE_NAME", "value": "n1"}]}]),
        (*CONTAINERS, 0, "env"),
        [{"name": "KUBERNETES_NODE_NAME", "value": "n1", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    ),
    (
        "add-volume",
        _template_patch(volumes=[{"name": "cfg", "configMap": {"name": "multus-cni-config"}}]),
        VOLUMES,
        [{"name": "cfg", "configMap": {"name": "multus-cni-config"}}, CNI_VOLUME, CNIBIN_VOLUME],
    ),
    (
        "patched-elements-follow-patch-order",
        _template_patch(
            volumes=[{"name": "cnibin", "hostPath": {"path": "/b"}}, {"name": "cni", "hostPath": {"path": "/a"}}]
        ),
        VOLUMES,
        [
            {"name": "cnibin", "hostPath": {"path": "/b", "type": "Directory"}},
            {"name": "cni", "hostPath": {"path": "/a"}},
        ],
    ),
    (
        "change-volume-hostpath-merges-map",
        _template_patch(volumes=[{"name": "cnibin", "hostPath": {"path": "/var/lib/cni/bin"}}]),
        VOLUMES,
        [CNI_VOLUME, {"name": "cnibin", "hostPath": {"path": "/var/lib/cni/bin", "type": "Directory"}}],
    ),
    (
        "volume-source-switch-without-retainkeys-keeps-both",
        _template_patch(volumes=[{"name": "cnibin", "emptyDir": {}}]),
        VOLUMES,
        [CNI_VOLUME, {**CNIBIN_VOLUME, "emptyDir": {}}],
    ),
    (
        "volume-source-switch-with-retainkeys",
        _template_patch(volumes=[{"name": "cnibin", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]}]),
        VOLUMES,
        [CNI_VOLUME, {"name": "cnibin", "emptyDir": {}}],
    ),
    (
        "mount-keyed-by-mountpath-change-adds-a-second-mount",
        _template_patch(
            containers=[{"name": "kube-multus", "volumeMounts": [{"name": "cnibin", "mountPath": "/opt/cni/bin"}]}]
        ),
        MOUNTS,
        [{"name": "cnibin", "mountPath": "/opt/cni/bin"}, MULTUS_MOUNT, CNIBIN_MOUNT],
    ),
    (
        "mount-path-change-is-delete-plus-add",
        _template_patch(
            containers=[
                {
                    "name": "kube-multus",
                    "volumeMounts": [
                        {"mountPath": "/host/opt/cni/bin", "$patch": "delete"},
                        {"name": "cnibin", "mountPath": "/opt/cni/bin"},
                    ],
                }
            ]
        ),
        MOUNTS,
        [{"name": "cnibin", "mountPath": "/opt/cni/bin"}, MULTUS_MOUNT],
    ),
    (
        "tolerations-have-no-merge-key",
        _template_patch(tolerations=[{"key": "dedicated", "operator": "Exists"}]),
        (*POD_SPEC, "tolerations"),
        [{"key": "dedicated", "operator": "Exists"}],
    ),
    (
        "args-are-replaced",
        _template_patch(containers=[{"name": "sidecar", "args": ["true"]}]),
        (*CONTAINERS, 1, "args"),
        ["true"],
    ),
    (
        "list-patch-replace",
        _template_patch(volumes=[{"$patch": "replace"}, {"name": "only", "emptyDir": {}}]),
        VOLUMES,
        [{"name": "only", "emptyDir": {}}],
    ),
    (
        "map-patch-replace",
        {"spec": {"template": {"metadata": {"$patch": "replace", "labels": {"name": "x"}}}}},
        ("spec", "template", "metadata"),
        {"labels": {"name": "x"}},
    ),
    (
        "map-patch-delete-leaves-empty-map",
        {"spec": {"selector": {"$patch": "delete"}}},
        ("spec", "selector"),
        {},
    ),
    ("null-deletes-label", {"metadata": {"labels": {"app": None}}}, ("metadata", "labels"), {"tier": "node"}),
    ("null-deletes-absent-key", {"metadata": {"annotations": None}}, ("metadata",), DAEMONSET["metadata"]),
    (
        "new-subtree-drops-nulls",
        {"metadata": {"annotations": {"a": "1", "b": None}}},
        ("metadata",),
        {**DAEMONSET["metadata"], "annotations": {"a": "1"}},
    ),
    (
        "set-element-order-reorders",
        _template_patch(**{"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "kube-multus"}]}),
        CONTAINERS,
        [SIDECAR, KUBE_MULTUS],
    ),
    (
        "set-element-order-places-new-volume",
        _template_patch(
            **{
                "$setElementOrder/volumes": [{"name": "cni"}, {"name": "new"}, {"name": "cnibin"}],
                "volumes": [{"name": "new", "emptyDir": {}}],
            }
        ),
        VOLUMES,
        [CNI_VOLUME, {"name": "new", "emptyDir": {}}, CNIBIN_VOLUME],
    ),
    (
        "directives-inside-new-elements-are-dropped",
        _template_patch(containers=[{"name": "new", "$setElementOrder/env": [{"name": "A"}], "env": [{"name": "A"}]}]),
        CONTAINERS,
        [{"name": "new", "env": [{"name": "A"}]}, KUBE_MULTUS, SIDECAR],
    ),
]


@pytest.mark.parametrize(("patch", "path", "expected"), [c[1:] for c in SMP_CASES], ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_daemonset(patch: dict[str, Any], path: tuple[str | int, ...], expected: Any) -> None:
    before, patch_before = copy.deepcopy(DAEMONSET), copy.deepcopy(patch)
    result = strategic_merge_patch(DAEMONSET, patch, "DaemonSet")
    assert _get(result, path) == expected
    assert _without(result, path) == DAEMONSET  # nothing else changed
    assert (DAEMONSET, patch) == (before, patch_before)  # inputs untouched


def test_strategic_merge_result_does_not_alias_inputs() -> None:
    patch = _template_patch(volumes=[{"name": "cfg", "configMap": {"name": "c"}}])
    result = strategic_merge_patch(DAEMONSET, patch, "DaemonSet")
    _get(result, VOLUMES)[0]["configMap"]["name"] = "changed"
    _get(result, VOLUMES)[1]["hostPath"]["path"] = "changed"
    assert patch["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "c"
    assert _get(DAEMONSET, VOLUMES)[0]["hostPath"]["path"] == "/etc/cni/net.d"


OTHER_KINDS: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "configmap-data-merges",
        "ConfigMap",
        {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}},
        {"data": {"b": None, "c": "3"}},
        {"metadata": {"name": "c"}, "data": {"a": "1", "c": "3"}},
    ),
    (
        "finalizers-are-a-merged-set",
        "ConfigMap",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["b", "c"]}},
        {"metadata": {"finalizers": ["a", "b", "c"]}},
    ),
    (
        "delete-from-primitive-list",
        "ConfigMap",
        {"metadata": {"finalizers": ["a", "b", "c"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
        {"metadata": {"finalizers": ["a", "c"]}},
    ),
    (
        "pod-status-conditions-merge-by-type",
        "Pod",
        {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}},
    ),
    (
        "pod-spec-containers-merge",
        "Pod",
        {"spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}]}},
        {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]}},
        {"spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "name": "http"}]}]}},
    ),
    (
        "node-taints-are-replaced",
        "Node",
        {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}},
        {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}},
        {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}},
    ),
    (
        "root-patch-replace",
        "ConfigMap",
        {"metadata": {"name": "c"}, "data": {"a": "1"}},
        {"$patch": "replace", "metadata": {"name": "c"}},
        {"metadata": {"name": "c"}},
    ),
]


@pytest.mark.parametrize(
    ("kind", "target", "patch", "expected"), [c[1:] for c in OTHER_KINDS], ids=[c[0] for c in OTHER_KINDS]
)
def test_strategic_merge_other_kinds(kind: str, target: dict[str, Any], patch: dict[str, Any], expected: Any) -> None:
    assert strategic_merge_patch(target, patch, kind) == expected


SMP_ERRORS: list[tuple[str, str, dict[str, Any], int, str]] = [
    (
        "custom-resource",
        "NetworkAttachmentDefinition",
        {"spec": {"config": "{}"}},
        415,
        "the body of the request was in an unknown format",
    ),
    ("unknown-map-directive", "DaemonSet", {"spec": {"$patch": "merge-please"}}, 400, "unknown patch type"),
    ("element-without-merge-key", "DaemonSet", _template_patch(containers=[{"image": "x"}]), 422, "merge key: name"),
    ("retainkeys-not-a-list", "DaemonSet", {"spec": {"$retainKeys": "x"}}, 400, "invalid patch format of retainKeys"),
    (
        "retainkeys-missing-patched-key",
        "DaemonSet",
        _template_patch(volumes=[{"name": "cnibin", "emptyDir": {}, "$retainKeys": ["name"]}]),
        422,
        "doesn't match retainKeys",
    ),
]


@pytest.mark.parametrize(
    ("kind", "patch", "code", "message"), [c[1:] for c in SMP_ERRORS], ids=[c[0] for c in SMP_ERRORS]
)
def test_strategic_merge_errors(kind: str, patch: dict[str, Any], code: int, message: str) -> None:
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(DAEMONSET, patch, kind)
    assert err.value.code == code
    assert message in str(err.value)


def test_unsupported_kind_is_a_distinct_error() -> None:
    assert not supports_strategic_merge("NetworkAttachmentDefinition")
    assert supports_strategic_merge("DaemonSet") and supports_strategic_merge("ConfigMap")
    with pytest.raises(UnsupportedPatch) as err:
        strategic_merge_patch({}, {}, "NetworkAttachmentDefinition")
    assert err.value.reason == "UnsupportedMediaType"


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/strategic-merge-patch+json", {"data": {"b": "2"}}, {"data": {"a": "1", "b": "2"}}),
        ("application/merge-patch+json; charset=utf-8", {"data": None}, {}),
        ("application/json-patch+json", [{"op": "remove", "path": "/data/a"}], {"data": {}}),
    ],
    ids=["strategic", "merge-with-charset", "json-patch"],
)
def test_apply_patch_dispatches_on_content_type(content_type: str, body: Any, expected: Any) -> None:
    assert apply_patch({"data": {"a": "1"}}, body, content_type, "ConfigMap") == expected


def test_apply_patch_rejects_server_side_apply() -> None:
    with pytest.raises(UnsupportedPatch):
        apply_patch({}, "kind: ConfigMap", "application/apply-patch+yaml", "ConfigMap")
