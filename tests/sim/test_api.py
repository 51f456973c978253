"""The real `kubernetes` client against the simulated API server: what it sends, what it gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiException

from simcluster.admission import Deny
from simcluster.cluster import Cluster, ErrorRule
from tests.sim.conftest import sleeper_ds


def run_exec(
    core: Any,
    pod: str,
    argv: list[str],
    *,
    ns: str = "kube-system",
    container: str | None = None,
    stdin: bytes | None = None,
) -> tuple[int | None, str, str, dict[str, Any]]:
    from kubernetes.stream import stream

    ws = stream(
        core.connect_get_namespaced_pod_exec, pod, ns, command=argv, container=container,
        stdin=stdin is not None, stdout=True, stderr=True, tty=False, _preload_content=False, binary=True,
    )  # fmt: skip
    try:
        if stdin is not None:
            ws.write_stdin(stdin)
            ws.close_channel(0)
        ws.run_forever(timeout=10)
        out, err = ws.read_stdout(), ws.read_stderr()
        raw = ws.read_channel(3)
    finally:
        ws.close()
        # websocket-client leaves the socket open once the server has closed first.
        ws.sock.shutdown()
    status = json.loads(raw) if raw else {}
    code: int | None = None
    if status.get("status") == "Success":
        code = 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            code = int(cause["message"])
    as_text = lambda b: b.decode() if isinstance(b, bytes) else b  # noqa: E731
    return code, as_text(out), as_text(err), status


def status_of(exc: ApiException) -> dict[str, Any]:
    body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
    return json.loads(body)


def ds_pods(core: Any, app: str = "sleeper") -> list[Any]:
    return sorted(
        core.list_namespaced_pod("kube-system", label_selector=f"app={app}").items, key=lambda p: p.spec.node_name
    )


# --- REST ---------------------------------------------------------------------------------
def test_version_and_nodes(client: Any, core: Any) -> None:
    from kubernetes.client import VersionApi

    assert VersionApi(client).get_code().git_version == "v1.31.4+k3s1"  # the first node's release
    assert [n.metadata.name for n in core.list_node().items] == ["node-a", "node-b"]
    assert core.read_node("node-a").status.node_info.kubelet_version == "v1.31.4+k3s1"


def test_get_missing_is_a_404_status_like_the_apiserver(core: Any) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("nope", "kube-system")
    assert err.value.status == 404
    assert status_of(err.value) | {"details": None} == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "nope" not found', "reason": "NotFound", "code": 404, "details": None,
    }  # fmt: skip


def test_create_conflicts_and_validation(core: Any) -> None:
    body = {"metadata": {"name": "new"}, "data": {"k": "v"}}
    made = core.create_namespaced_config_map("kube-system", body)
    assert made.metadata.uid and made.metadata.resource_version
    with pytest.raises(ApiException) as dup:
        core.create_namespaced_config_map("kube-system", body)
    assert (dup.value.status, status_of(dup.value)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as bad:
        core.create_namespaced_config_map("kube-system", {"metadata": {"name": "Not_Valid"}})
    assert bad.value.status == 422 and status_of(bad.value)["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as no_ns:
        core.create_namespaced_config_map("missing-ns", body)
    assert no_ns.value.status == 404 and status_of(no_ns.value)["message"] == 'namespaces "missing-ns" not found'


def test_dry_run_create_changes_nothing(core: Any) -> None:
    core.create_namespaced_config_map("kube-system", {"metadata": {"name": "dry"}}, dry_run="All")
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", "kube-system")


def test_patch_kinds_the_client_sends(core: Any, cluster: Cluster) -> None:
    core.patch_namespaced_config_map("cfg", "kube-system", {"data": {"extra": "1"}})
    got = core.read_namespaced_config_map("cfg", "kube-system")
    assert got.data == {"daemon-config.json": '{"a": 1}', "extra": "1"}
    core.patch_namespaced_config_map("cfg", "kube-system", [{"op": "replace", "path": "/data/extra", "value": "2"}])
    assert core.read_namespaced_config_map("cfg", "kube-system").data["extra"] == "2"
    types = [r.content_type.split(";")[0] for r in cluster.requests if r.verb == "patch"]
    assert types == ["application/strategic-merge-patch+json", "application/json-patch+json"]
    with pytest.raises(ApiException) as failed:
        core.patch_namespaced_config_map("cfg", "kube-system", [{"op": "test", "path": "/data/extra", "value": "9"}])
    assert failed.value.status == 422


def test_stale_replace_is_a_conflict(core: Any) -> None:
    old = core.read_namespaced_config_map("cfg", "kube-system")
    core.patch_namespaced_config_map("cfg", "kube-system", {"data": {"x": "1"}})
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cfg", "kube-system", old)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"


def test_selectors(core: Any, apps: Any) -> None:
    apps.create_namespaced_daemon_set("kube-system", sleeper_ds())
    assert len(core.list_pod_for_all_namespaces(label_selector="app=sleeper").items) == 2
    assert core.list_pod_for_all_namespaces(label_selector="app in (other)").items == []
    on_a = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a").items
    assert [p.spec.node_name for p in on_a] == ["node-a"]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("kube-system", field_selector="spec.nope=x")
    assert err.value.status == 400


# --- the DaemonSet controller and the kubelet --------------------------------------------------
def test_daemonset_pods_follow_deletes_and_rollouts(core: Any, apps: Any) -> None:
    apps.create_namespaced_daemon_set("kube-system", sleeper_ds())
    first = ds_pods(core)
    assert [p.spec.node_name for p in first] == ["node-a", "node-b"]
    assert all(p.status.phase == "Running" and p.status.container_statuses[0].ready for p in first)
    core.delete_namespaced_pod(first[0].metadata.name, "kube-system")
    second = ds_pods(core)
    assert second[0].metadata.name != first[0].metadata.name and second[1].metadata.name == first[1].metadata.name
    apps.patch_namespaced_daemon_set(
        "sleeper", "kube-system", {"spec": {"template": {"spec": {"containers": [{"name": "main", "args": ["--x"]}]}}}}
    )
    third = ds_pods(core)
    assert not {p.metadata.name for p in third} & {p.metadata.name for p in second}
    assert third[0].spec.containers[0].args == ["--x"]
    ds = apps.read_namespaced_daemon_set("sleeper", "kube-system")
    assert (ds.metadata.generation, ds.status.number_ready, ds.status.updated_number_scheduled) == (2, 2, 2)


def test_taints_and_node_selectors_decide_where_daemonset_pods_run(cluster: Cluster, core: Any, apps: Any) -> None:
    from tests.sim.conftest import node

    cluster.add(node("tainted", taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]))
    apps.create_namespaced_daemon_set("kube-system", sleeper_ds())
    assert [p.spec.node_name for p in ds_pods(core)] == ["node-a", "node-b"]
    ds = sleeper_ds("tolerant")
    ds["spec"]["template"]["spec"]["tolerations"] = [{"operator": "Exists"}]
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "tainted"}
    apps.create_namespaced_daemon_set("kube-system", ds)
    assert [p.spec.node_name for p in ds_pods(core, "tolerant")] == ["tainted"]


def helper_pod(name: str = "helper", *, deadline: int = 120, privileged: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kubectl-multus"}},
        "spec": {
            "nodeName": "node-b",
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "helper", "image": "busybox:1.36", "command": ["sleep", "3600"], "securityContext": {"privileged": privileged},
                            "volumeMounts": [{"name": "cni", "mountPath": "/host/etc/cni/net.d", "readOnly": True}]}],
            "volumes": [{"name": "cni", "hostPath": {"path": "/etc/cni/net.d", "type": "Directory"}}],
        },
    }  # fmt: skip


def test_helper_pod_runs_until_its_deadline(cluster: Cluster, core: Any) -> None:
    (cluster.node_root("node-b") / "etc/cni/net.d").mkdir(parents=True)
    core.create_namespaced_pod("kube-system", helper_pod())
    pod = core.read_namespaced_pod("helper", "kube-system")
    assert pod.status.phase == "Running" and pod.spec.node_name == "node-b"
    cluster.advance(121)
    pod = core.read_namespaced_pod("helper", "kube-system")
    assert (pod.status.phase, pod.status.reason) == ("Failed", "DeadlineExceeded")


def test_hostpath_of_type_directory_must_exist(cluster: Cluster, core: Any) -> None:
    core.create_namespaced_pod("kube-system", helper_pod())
    state = core.read_namespaced_pod("helper", "kube-system").status.container_statuses[0].state
    assert state.waiting.reason == "ContainerCreating" and not state.waiting.message  # the why is in an Event
    events = core.list_namespaced_event("kube-system", field_selector="involvedObject.name=helper").items
    assert [e.reason for e in events] == ["FailedMount"]
    assert 'MountVolume.SetUp failed for volume "cni"' in events[0].message and "/etc/cni/net.d" in events[0].message


def test_pod_security_rejects_privileged_helpers_also_on_dry_run(cluster: Cluster, core: Any) -> None:
    core.create_namespace(
        {"metadata": {"name": "locked", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}
    )
    for dry in ("All", None):
        with pytest.raises(ApiException) as err:
            core.create_namespaced_pod("locked", helper_pod(), dry_run=dry)
        assert err.value.status == 403
        assert status_of(err.value)["message"] == (
            'pods "helper" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "cni"), '
            'privileged (container "helper" must not set securityContext.privileged=true)'
        )
    assert core.list_namespaced_pod("locked").items == []


# --- exec ------------------------------------------------------------------------------------
def test_exec_sees_node_files_only_through_mounts(cluster: Cluster, core: Any) -> None:
    conf = cluster.node_root("node-b") / "etc/cni/net.d"
    conf.mkdir(parents=True)
    (conf / "10-flannel.conflist").write_text('{"name": "cbr0"}')
    core.create_namespaced_pod("kube-system", helper_pod())
    code, out, err, _ = run_exec(core, "helper", ["cat", "/host/etc/cni/net.d/10-flannel.conflist"])
    assert (code, out, err) == (0, '{"name": "cbr0"}', "")
    code, out, err, status = run_exec(core, "helper", ["cat", "/etc/cni/net.d/10-flannel.conflist"])
    assert (code, out) == (1, "") and "No such file or directory" in err
    assert status["reason"] == "NonZeroExitCode"
    code, _, err, _ = run_exec(core, "helper", ["touch", "/host/etc/cni/net.d/x"])
    assert code == 1 and "Read-only file system" in err
    assert not (conf / "x").exists()


def test_exec_stdin_reaches_the_file_through_a_writable_mount(cluster: Cluster, core: Any, apps: Any) -> None:
    apps.create_namespaced_daemon_set("kube-system", sleeper_ds())
    pod = ds_pods(core)[0].metadata.name
    data = b"x" * 100_000 + b"\n"
    code, _, _, _ = run_exec(core, pod, ["dd", "of=/host/etc/cni/net.d/big"], stdin=data)
    assert code == 0
    assert (cluster.node_root("node-a") / "etc/cni/net.d/big").read_bytes() == data


def test_exec_refused_into_a_container_that_is_not_running(cluster: Cluster, core: Any) -> None:
    pod = helper_pod(deadline=5)
    (cluster.node_root("node-b") / "etc/cni/net.d").mkdir(parents=True)
    core.create_namespaced_pod("kube-system", pod)
    cluster.advance(10)
    with pytest.raises(ApiException) as err:
        run_exec(core, "helper", ["true"])
    reason = str(err.value.reason)
    assert (
        err.value.status == 0
        and "Handshake status 500" in reason
        and "container not found" in reason
        and "helper" in reason
    )


def test_exec_that_breaks_mid_stream_gives_no_status(cluster: Cluster, core: Any, apps: Any) -> None:
    apps.create_namespaced_daemon_set("kube-system", sleeper_ds())
    pod = ds_pods(core)[0].metadata.name
    (cluster.node_root("node-a") / "etc/cni/net.d/f").write_text("0123456789")
    cluster.faults.exec_breaks_after = 4
    from websocket import WebSocketConnectionClosedException

    with pytest.raises(WebSocketConnectionClosedException):
        run_exec(core, pod, ["cat", "/host/etc/cni/net.d/f"])
    cluster.faults.exec_breaks_after = None
    assert run_exec(core, pod, ["cat", "/host/etc/cni/net.d/f"])[:2] == (0, "0123456789")


# --- faults and the request log ------------------------------------------------------------------
def test_rbac_denial_and_access_review_agree(cluster: Cluster, client: Any, core: Any) -> None:
    from kubernetes.client import AuthorizationV1Api

    cluster.faults.deny.append(Deny("get", "pods/exec"))  # a WebSocket exec is a GET before 1.35
    cluster.faults.deny.append(Deny("list", "pods", "kube-system"))
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("kube-system")
    assert err.value.status == 403
    assert (
        status_of(err.value)["message"]
        == 'pods is forbidden: User "kubernetes-admin" cannot list resource "pods" in API group "" in the namespace "kube-system"'
    )
    review = AuthorizationV1Api(client).create_self_subject_access_review(
        {
            "spec": {
                "resourceAttributes": {
                    "verb": "get",
                    "resource": "pods",
                    "subresource": "exec",
                    "namespace": "kube-system",
                }
            }
        }
    )
    assert review.status.allowed is False
    review = AuthorizationV1Api(client).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "kube-system"}}}
    )
    assert review.status.allowed is True


def test_error_rules_and_request_log(cluster: Cluster, core: Any) -> None:
    cluster.faults.errors.append(ErrorRule("GET", r"/configmaps/cfg$", 503, "etcd is sad", times=1))
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("cfg", "kube-system")
    assert err.value.status == 503
    assert core.read_namespaced_config_map("cfg", "kube-system").data
    gets = [(r.verb, r.resource, r.name, r.code) for r in cluster.requests if r.resource == "configmaps"]
    assert gets == [("get", "configmaps", "cfg", 503), ("get", "configmaps", "cfg", 200)]


def test_helper_that_never_starts_stays_pending(cluster: Cluster, core: Any) -> None:
    (cluster.node_root("node-b") / "etc/cni/net.d").mkdir(parents=True)
    cluster.faults.helper_never_starts = True
    core.create_namespaced_pod("kube-system", helper_pod())
    cluster.advance(60)
    pod = core.read_namespaced_pod("helper", "kube-system")
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"


def test_configmap_volume_shows_current_keys(cluster: Cluster, core: Any, apps: Any) -> None:
    ds = sleeper_ds()
    spec = ds["spec"]["template"]["spec"]
    spec["volumes"].append({"name": "cfg", "configMap": {"name": "cfg"}})
    spec["containers"][0]["volumeMounts"].append({"name": "cfg", "mountPath": "/etc/cni/net.d/multus.d"})
    apps.create_namespaced_daemon_set("kube-system", ds)
    pod = ds_pods(core)[0].metadata.name
    assert run_exec(core, pod, ["cat", "/etc/cni/net.d/multus.d/daemon-config.json"])[1] == '{"a": 1}'
    core.patch_namespaced_config_map("cfg", "kube-system", {"data": {"daemon-config.json": '{"a": 2}'}})
    assert run_exec(core, pod, ["cat", "/etc/cni/net.d/multus.d/daemon-config.json"])[1] == '{"a": 2}'
    code, _, err, _ = run_exec(core, pod, ["rm", "/etc/cni/net.d/multus.d/daemon-config.json"])
    assert code == 1 and "Read-only file system" in err


def test_demo_module_prints_a_working_kubeconfig(tmp_path: Path) -> None:
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[2] / "examples" / "kubeadm-healthy"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simcluster", str(example)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        kubeconfig = proc.stdout.readline().strip()
        from kubernetes import client as k
        from kubernetes import config

        api = config.new_client_from_config(config_file=kubeconfig, persist_config=False)
        names = [n.metadata.name for n in k.CoreV1Api(api).list_node().items]
        api.close()
        assert len(names) == 3
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_custom_resources_are_served_only_while_their_crd_exists(cluster: Cluster, client: Any) -> None:
    from kubernetes.client import ApiextensionsV1Api, CustomObjectsApi

    from simcluster import api

    custom = CustomObjectsApi(client)
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "macvlan"},
        "spec": {"config": '{"type": "macvlan"}'},
    }
    args = ("k8s.cni.cncf.io", "v1", "default", "network-attachment-definitions")
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object(*args)
    assert err.value.status == 404
    crd = api.crd_for(next(k for k in api.KNOWN_CUSTOM if k.kind == "NetworkAttachmentDefinition"))
    ApiextensionsV1Api(client).create_custom_resource_definition(crd)
    custom.create_namespaced_custom_object(*args, nad)
    custom.patch_namespaced_custom_object(*args, "macvlan", {"spec": {"config": '{"type": "bridge"}'}})
    got = custom.get_namespaced_custom_object(*args, "macvlan")
    assert got["spec"]["config"] == '{"type": "bridge"}'
    assert [
        o["metadata"]["name"]
        for o in custom.list_cluster_custom_object("k8s.cni.cncf.io", "v1", "network-attachment-definitions")["items"]
    ] == ["macvlan"]
    custom.delete_namespaced_custom_object(*args, "macvlan")
    assert custom.list_namespaced_custom_object(*args)["items"] == []


def test_latency_applies_to_every_request(cluster: Cluster, core: Any) -> None:
    import time

    cluster.faults.latency = 0.2
    start = time.monotonic()
    core.list_node()
    core.read_namespace("default")
    assert time.monotonic() - start >= 0.4


def test_multus_pods_that_never_get_ready(cluster: Cluster, core: Any, apps: Any) -> None:
    cluster.faults.never_ready = {"node-b"}
    apps.create_namespaced_daemon_set("kube-system", sleeper_ds())
    ready = {p.spec.node_name: p.status.container_statuses[0].ready for p in ds_pods(core)}
    assert ready == {"node-a": True, "node-b": False}
    assert apps.read_namespaced_daemon_set("sleeper", "kube-system").status.number_ready == 1


def test_fixing_the_daemonset_brings_the_crash_looping_multus_up(tmp_path: Path) -> None:
    """The flow `fix` relies on: patch the args at fault, the rollout replaces the pod, the new
    pod passes its startup checks, writes its config on the node and stays Ready."""
    from kubernetes import client as k
    from kubernetes import config

    from simcluster.process import Clock

    sim = Cluster(tmp_path / "sim", clock=Clock(start=1_796_000_000.0))
    sim.load_dump(Path(__file__).resolve().parents[2] / "examples" / "k3s-thin-doubled-prefix")
    with sim:
        api = config.new_client_from_config(config_file=str(sim.kubeconfig), persist_config=False)
        core, apps = k.CoreV1Api(api), k.AppsV1Api(api)
        before = core.list_namespaced_pod("kube-system", label_selector="app=multus").items[0]
        assert not before.status.container_statuses[0].ready
        ds = apps.read_namespaced_daemon_set("kube-multus-ds", "kube-system")
        args = [
            "--multus-conf-file=auto",
            "--cni-conf-dir=/host/etc/cni/net.d",
            "--multus-autoconfig-dir=/host/etc/cni/net.d",
            "--multus-kubeconfig-file-host=/var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/multus.kubeconfig",
        ]
        name = ds.spec.template.spec.containers[0].name
        apps.patch_namespaced_daemon_set(
            "kube-multus-ds",
            "kube-system",
            {"spec": {"template": {"spec": {"containers": [{"name": name, "args": args}]}}}},
        )
        after = core.list_namespaced_pod("kube-system", label_selector="app=multus").items
        assert [p.metadata.name for p in after] != [before.metadata.name]
        assert after[0].status.container_statuses[0].ready
        conf = sim.node_root(after[0].spec.node_name) / "var/lib/rancher/k3s/agent/etc/cni/net.d"
        written = json.loads((conf / "00-multus.conflist").read_text())
        assert written["plugins"][0]["kubeconfig"] == args[-1].split("=", 1)[1]
        assert (conf / "multus.d/multus.kubeconfig").is_file()
        api.close()
