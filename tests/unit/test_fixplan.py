"""Fix plans as data (kubectl_multus.core.fixplan)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.fixplan import apply_to_daemonset, apply_to_json, clean_object, collect_changes, unified_diff

DS = Target("DaemonSet", "kube-system", "kube-multus-ds")
CM = Target("ConfigMap", "kube-system", "multus-daemon-config", key="daemon-config.json")


def daemonset(args: list[str] | None = None, command: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "kube-multus",
        "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0",
        "volumeMounts": [{"name": "cni", "mountPath": "/host/etc/cni/net.d"}],
    }
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-multus-ds", "namespace": "kube-system"},
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [
                        {
                            "name": "install-multus-binary",
                            "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
                        }
                    ],
                    "containers": [container],
                    "volumes": [
                        {"name": "cni", "hostPath": {"path": "/etc/cni/net.d", "type": "DirectoryOrCreate"}},
                        {"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}},
                    ],
                }
            }
        },
    }


def ds_change(key: str, value: str | None, container: str = "kube-multus", target: Target = DS) -> Change:
    return Change(target, key, value, container=container)


def pod_spec(ds: dict[str, Any]) -> dict[str, Any]:
    return ds["spec"]["template"]["spec"]


def finding(*changes: Change) -> Finding:
    return Finding("M107", Severity.ERROR, "conf dir volume is not the runtime's", changes=changes)


# --- apply_to_daemonset -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        pytest.param(
            ["--cni-conf-dir=/host/etc/cni/net.d", "--cleanup-config-on-exit=true"],
            "/host/x",
            ["--cni-conf-dir=/host/x", "--cleanup-config-on-exit=true"],
            id="replace-flag-equals-value",
        ),
        pytest.param(
            ["--cni-conf-dir", "/host/etc/cni/net.d", "--cleanup-config-on-exit=true"],
            "/host/x",
            ["--cni-conf-dir", "/host/x", "--cleanup-config-on-exit=true"],
            id="replace-flag-space-value-pair",
        ),
        pytest.param(
            ["--cni-conf-dir=/host/etc/cni/net.d", "--cleanup-config-on-exit=true"],
            None,
            ["--cleanup-config-on-exit=true"],
            id="remove-flag-equals-value",
        ),
        pytest.param(
            ["--cni-conf-dir", "/host/etc/cni/net.d", "--cleanup-config-on-exit=true"],
            None,
            ["--cleanup-config-on-exit=true"],
            id="remove-flag-space-value-pair",
        ),
        pytest.param(
            ["--cleanup-config-on-exit=true"],
            "/host/x",
            ["--cleanup-config-on-exit=true", "--cni-conf-dir=/host/x"],
            id="append-missing-flag",
        ),
        pytest.param(
            ["--cleanup-config-on-exit=true"], None, ["--cleanup-config-on-exit=true"], id="remove-missing-flag-is-noop"
        ),
        pytest.param(
            ["--cni-conf-dir-extra=/a"],
            "/host/x",
            ["--cni-conf-dir-extra=/a", "--cni-conf-dir=/host/x"],
            id="longer-flag-with-same-prefix-untouched",
        ),
    ],
)
def test_apply_to_daemonset_sets_container_args(args: list[str], value: str | None, expected: list[str]) -> None:
    out = apply_to_daemonset(daemonset(args), [ds_change("ds.arg.--cni-conf-dir", value)])
    assert pod_spec(out)["containers"][0]["args"] == expected


def test_apply_to_daemonset_edits_flag_inside_command() -> None:
    out = apply_to_daemonset(
        daemonset(command=["/thin_entrypoint", "--cni-conf-dir=/host/etc/cni/net.d"]),
        [ds_change("ds.arg.--cni-conf-dir", "/host/x")],
    )
    container = pod_spec(out)["containers"][0]
    assert container["command"] == ["/thin_entrypoint", "--cni-conf-dir=/host/x"]
    assert "args" not in container


@pytest.mark.parametrize(
    ("args", "command", "field", "expected"),
    [
        pytest.param(
            None, ["/thin_entrypoint"], "command", ["/thin_entrypoint", "--x=1"], id="only-command-appends-there"
        ),
        pytest.param([], ["/thin_entrypoint"], "args", ["--x=1"], id="empty-args-list-appends-to-args"),
        pytest.param(None, None, "args", ["--x=1"], id="neither-creates-args"),
    ],
)
def test_apply_to_daemonset_appends_missing_flag_to_args_or_command(
    args: list[str] | None, command: list[str] | None, field: str, expected: list[str]
) -> None:
    out = apply_to_daemonset(daemonset(args, command), [ds_change("ds.arg.--x", "1")])
    assert pod_spec(out)["containers"][0][field] == expected


def test_apply_to_daemonset_arg_change_only_touches_named_container() -> None:
    out = apply_to_daemonset(daemonset([]), [ds_change("ds.arg.--x", "1", container="install-multus-binary")])
    assert pod_spec(out)["containers"][0]["args"] == []
    assert pod_spec(out)["initContainers"][0]["args"] == ["--x=1"]


def test_apply_to_daemonset_sets_volume_host_path_keeping_its_type() -> None:
    out = apply_to_daemonset(
        daemonset([]), [ds_change("ds.volume.cni.hostPath", "/var/lib/rancher/k3s/agent/etc/cni/net.d", container="")]
    )
    assert pod_spec(out)["volumes"] == [
        {"name": "cni", "hostPath": {"path": "/var/lib/rancher/k3s/agent/etc/cni/net.d", "type": "DirectoryOrCreate"}},
        {"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}},
    ]


def test_apply_to_daemonset_sets_mount_path_of_named_container() -> None:
    out = apply_to_daemonset(
        daemonset([]),
        [ds_change("ds.mount.cnibin.mountPath", "/var/lib/rancher/k3s/data/cni", container="install-multus-binary")],
    )
    assert pod_spec(out)["initContainers"][0]["volumeMounts"] == [
        {"name": "cnibin", "mountPath": "/var/lib/rancher/k3s/data/cni"}
    ]
    assert pod_spec(out)["containers"][0]["volumeMounts"] == [{"name": "cni", "mountPath": "/host/etc/cni/net.d"}]


def test_apply_to_daemonset_sets_image() -> None:
    out = apply_to_daemonset(daemonset([]), [ds_change("ds.image", "multus:thick")])
    assert pod_spec(out)["containers"][0]["image"] == "multus:thick"


def test_apply_to_daemonset_never_mutates_its_input() -> None:
    ds = daemonset(["--cni-conf-dir=/host/etc/cni/net.d", "--cni-bin-dir", "/host/opt/cni/bin"])
    before = copy.deepcopy(ds)
    changes = [
        ds_change("ds.arg.--cni-conf-dir", "/host/x"),
        ds_change("ds.arg.--cni-bin-dir", None),
        ds_change("ds.arg.--new", "1"),
        ds_change("ds.volume.cni.hostPath", "/x", container=""),
        ds_change("ds.mount.cni.mountPath", "/x"),
        ds_change("ds.image", "other"),
    ]
    out = apply_to_daemonset(ds, changes)
    assert ds == before
    assert out != before


def test_apply_to_daemonset_without_changes_returns_equal_copy() -> None:
    ds = daemonset(["--a=1"])
    out = apply_to_daemonset(ds, [])
    assert out == ds
    assert out is not ds


# --- apply_to_json ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "indent",
    [pytest.param(2, id="two-space-stays-two-space"), pytest.param(4, id="four-space-stays-four-space")],
)
def test_apply_to_json_keeps_indentation(indent: int) -> None:
    text = json.dumps({"cniVersion": "0.3.1", "binDir": "/opt/cni/bin"}, indent=indent) + "\n"
    out = apply_to_json(text, [Change(CM, "daemon_config.binDir", "/var/lib/rancher/k3s/data/cni")])
    pad = " " * indent
    assert out == f'{{\n{pad}"cniVersion": "0.3.1",\n{pad}"binDir": "/var/lib/rancher/k3s/data/cni"\n}}\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('{\n  "a": "1"\n}\n', '{\n  "a": "2"\n}\n', id="trailing-newline-kept"),
        pytest.param('{\n  "a": "1"\n}', '{\n  "a": "2"\n}', id="no-trailing-newline-none-added"),
        pytest.param('{"a": "1"}\n', '{\n  "a": "2"\n}\n', id="one-line-file-gets-two-spaces"),
    ],
)
def test_apply_to_json_trailing_newline(text: str, expected: str) -> None:
    assert apply_to_json(text, [Change(CM, "daemon_config.a", "2")]) == expected


def test_apply_to_json_removes_keys_set_to_none_and_appends_new_keys() -> None:
    text = '{\n    "cniVersion": "0.3.1",\n    "chrootDir": "/hostroot",\n    "binDir": "/opt/cni/bin"\n}\n'
    changes = [
        Change(CM, "daemon_config.chrootDir", None),
        Change(CM, "daemon_config.absent", None),
        Change(CM, "daemon_config.socketDir", "/host/run/multus"),
        Change(CM, "daemon_config.binDir", "/x"),
    ]
    assert apply_to_json(text, changes) == (
        '{\n    "cniVersion": "0.3.1",\n    "binDir": "/x",\n    "socketDir": "/host/run/multus"\n}\n'
    )


def test_apply_to_json_without_changes_round_trips_a_formatted_file() -> None:
    text = '{\n    "cniVersion": "0.3.1",\n    "nested": {\n        "a": [\n            1\n        ]\n    }\n}\n'
    assert apply_to_json(text, []) == text


# --- unified_diff -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("a\nb\n", "a\nc\n", id="texts-ending-in-newline"),
        pytest.param("a\nb", "a\nc", id="texts-without-final-newline"),
    ],
)
def test_unified_diff_labels_a_and_b_and_ends_each_line(before: str, after: str) -> None:
    assert unified_diff(before, after, "kube-system/kube-multus-ds.yaml") == (
        "--- a/kube-system/kube-multus-ds.yaml\n+++ b/kube-system/kube-multus-ds.yaml\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    )


def test_unified_diff_of_identical_texts_is_empty() -> None:
    assert unified_diff("a\n", "a\n", "x") == ""


# --- collect_changes --------------------------------------------------------------------------------------------


def test_collect_changes_dedups_identical_changes_from_several_findings() -> None:
    conf = ds_change("ds.volume.cni.hostPath", "/k3s/net.d", container="")
    bins = ds_change("ds.volume.cnibin.hostPath", "/k3s/cni", container="")
    bin_dir = Change(CM, "daemon_config.binDir", "/k3s/cni")
    by_target, conflicts = collect_changes(
        [
            finding(conf, bins),
            finding(conf),
            finding(bin_dir, bins),
            finding(Change(CM, "daemon_config.binDir", "/k3s/cni")),
        ]
    )
    assert by_target == {DS: [conf, bins], CM: [bin_dir]}
    assert conflicts == []


def test_collect_changes_same_key_in_different_containers_is_no_conflict() -> None:
    main = ds_change("ds.mount.cnibin.mountPath", "/host/opt/cni/bin")
    init = ds_change("ds.mount.cnibin.mountPath", "/opt/cni/bin", container="install-multus-binary")
    assert collect_changes([finding(main), finding(init)]) == ({DS: [main, init]}, [])


def test_collect_changes_disagreeing_values_become_a_conflict_and_are_dropped() -> None:
    first = ds_change("ds.volume.cni.hostPath", "/var/lib/rancher/k3s/agent/etc/cni/net.d", container="")
    second = ds_change("ds.volume.cni.hostPath", "/etc/cni/net.d", container="")
    other = ds_change("ds.arg.--cni-bin-dir", "/host/opt/cni/bin")
    by_target, conflicts = collect_changes([finding(first, other), finding(second)])
    assert by_target == {DS: [other]}
    assert conflicts == [
        "DaemonSet kube-system/kube-multus-ds ds.volume.cni.hostPath: nodes need different values "
        "('/var/lib/rancher/k3s/agent/etc/cni/net.d' and '/etc/cni/net.d'); "
        "one DaemonSet cannot serve both, split it per node pool"
    ]


def test_collect_changes_target_left_without_changes_is_removed() -> None:
    a = ds_change("ds.volume.cni.hostPath", "/a", container="")
    b = ds_change("ds.volume.cni.hostPath", "/b", container="")
    by_target, conflicts = collect_changes([finding(a), finding(b)])
    assert by_target == {}
    assert len(conflicts) == 1


def test_collect_changes_reports_a_conflict_once_however_many_values_disagree() -> None:
    values = ["/a", "/b", "/c", "/a"]
    by_target, conflicts = collect_changes([finding(ds_change("ds.arg.--cni-conf-dir", v)) for v in values])
    assert by_target == {}
    assert conflicts == [
        "DaemonSet kube-system/kube-multus-ds ds.arg.--cni-conf-dir: nodes need different values ('/a' and '/b'); "
        "one DaemonSet cannot serve both, split it per node pool"
    ]


def test_collect_changes_conflict_in_one_container_keeps_same_key_of_another() -> None:
    init = ds_change("ds.mount.cnibin.mountPath", "/host/opt/cni/bin", container="install-multus-binary")
    by_target, conflicts = collect_changes(
        [
            finding(init, ds_change("ds.mount.cnibin.mountPath", "/a")),
            finding(ds_change("ds.mount.cnibin.mountPath", "/b")),
        ]
    )
    assert by_target == {DS: [init]}
    assert len(conflicts) == 1


def test_collect_changes_conflict_on_one_daemonset_keeps_same_key_of_another() -> None:
    thick = Target("DaemonSet", "kube-system", "kube-multus-ds-thick")
    thin = ds_change("ds.volume.cni.hostPath", "/etc/cni/net.d", container="")
    by_target, conflicts = collect_changes(
        [
            finding(thin),
            finding(ds_change("ds.volume.cni.hostPath", "/a", container="", target=thick)),
            finding(ds_change("ds.volume.cni.hostPath", "/b", container="", target=thick)),
        ]
    )
    assert len(conflicts) == 1
    assert by_target == {DS: [thin]}


# --- clean_object -----------------------------------------------------------------------------------------------


def test_clean_object_drops_status_and_server_bookkeeping() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "kube-multus-ds",
            "namespace": "kube-system",
            "labels": {"app": "multus"},
            "managedFields": [{"manager": "kubectl"}],
            "resourceVersion": "12345",
            "uid": "0f6c",
            "generation": 3,
            "creationTimestamp": "2024-10-01T00:00:00Z",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "deprecated.daemonset.template.generation": "3",
                "team": "net",
            },
        },
        "spec": {"selector": {}},
        "status": {"numberReady": 1},
    }
    before = copy.deepcopy(obj)
    assert clean_object(obj) == {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "kube-multus-ds",
            "namespace": "kube-system",
            "labels": {"app": "multus"},
            "annotations": {"team": "net"},
        },
        "spec": {"selector": {}},
    }
    assert obj == before


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({"kubectl.kubernetes.io/last-applied-configuration": "{}"}, id="only-last-applied"),
        pytest.param({}, id="already-empty"),
    ],
)
def test_clean_object_drops_annotations_left_empty(annotations: dict[str, str]) -> None:
    obj = {"metadata": {"name": "x", "annotations": annotations}}
    assert clean_object(obj) == {"metadata": {"name": "x"}}


def test_clean_object_without_metadata_only_drops_status() -> None:
    assert clean_object({"kind": "ConfigMap", "status": {}}) == {"kind": "ConfigMap"}


def test_apply_to_daemonset_sets_a_field_of_the_named_init_container_only() -> None:
    ds = daemonset(args=[])
    after = apply_to_daemonset(
        ds,
        [
            Change(DS, "ds.initContainer.install-multus-binary.resources.limits.memory", "15Mi"),
            Change(DS, "ds.initContainer.install-multus-binary.securityContext.privileged", "true"),
            Change(DS, "ds.initContainer.other.resources.limits.memory", "1Gi"),
        ],
    )
    spec = after["spec"]["template"]["spec"]
    init = spec["initContainers"][0]
    assert init["resources"] == {"limits": {"memory": "15Mi"}}
    assert init["securityContext"] == {"privileged": True}  # a boolean, as the API wants it
    assert "resources" not in spec["containers"][0]


def test_apply_to_daemonset_removes_a_container_field_set_to_none() -> None:
    ds = daemonset(args=[])
    ds["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    after = apply_to_daemonset(ds, [Change(DS, "ds.container.kube-multus.resources.limits.cpu", None)])
    assert after["spec"]["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "1"}, "limits": {}}
    untouched = apply_to_daemonset(ds, [Change(DS, "ds.container.kube-multus.securityContext.privileged", None)])
    assert "securityContext" not in untouched["spec"]["template"]["spec"]["containers"][0]


def test_daemonset_patch_guards_an_added_container_field_with_the_containers_name() -> None:
    from kubectl_multus.core.patchops import daemonset_patch

    ds = daemonset(args=[])
    after = apply_to_daemonset(ds, [Change(DS, "ds.initContainer.install-multus-binary.resources.limits.cpu", "10m")])
    ops = daemonset_patch(ds, after)
    init = ds["spec"]["template"]["spec"]["initContainers"][0]
    assert ops == [
        {"op": "test", "path": "/spec/template/spec/initContainers/0/name", "value": "install-multus-binary"},
        {"op": "test", "path": "/spec/template/spec/initContainers/0", "value": init},  # no resources yet
        {"op": "add", "path": "/spec/template/spec/initContainers/0/resources", "value": {"limits": {"cpu": "10m"}}},
    ]


def test_daemonset_patch_refuses_a_field_someone_added_meanwhile() -> None:
    """An `add` would silently replace a securityContext added since the plan was made: the test of
    the container it goes into fails the whole patch instead."""
    from kubectl_multus.core.patchops import daemonset_patch
    from simcluster.patches import PatchError, json_patch

    ds = daemonset(args=[])
    ops = daemonset_patch(
        ds, apply_to_daemonset(ds, [Change(DS, "ds.container.kube-multus.securityContext.privileged", "true")])
    )
    assert json_patch(ds, ops)["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    meanwhile = apply_to_daemonset(ds, [Change(DS, "ds.container.kube-multus.securityContext.runAsUser", "0")])
    with pytest.raises(PatchError):
        json_patch(meanwhile, ops)
