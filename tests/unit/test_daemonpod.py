"""The Multus pod itself: killed while Burstable (M303), the shim socket (M304), host writes
SELinux refuses (M305, M306), containers the runtime cannot start (M307), Bidirectional
propagation without privileged (M118)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from kubectl_multus.core.daemonpod import (
    check_killed_burstable,
    check_propagation,
    check_socket,
    check_start_errors,
    kill_evidence,
)
from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.hostwrites import check_host_writes, denials
from kubectl_multus.core.install import Install, read_install
from kubectl_multus.core.snapshot import NodeFiles, Snapshot
from tests import scenarios as sc


def thick_ds(init_limits: bool = False) -> dict[str, Any]:
    init_res: dict[str, Any] = {"requests": {"cpu": "10m", "memory": "15Mi"}}
    if init_limits:
        init_res["limits"] = {"cpu": "10m", "memory": "15Mi"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-multus-ds", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"name": "multus"}},
            "template": {
                "metadata": {"labels": {"name": "multus"}},
                "spec": {
                    "containers": [
                        {
                            "name": "kube-multus",
                            "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0-thick",
                            "command": ["/usr/src/multus-cni/bin/multus-daemon"],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "50Mi"},
                                "limits": {"cpu": "100m", "memory": "50Mi"},
                            },
                            "securityContext": {"privileged": True},
                            "volumeMounts": [{"name": "host-run", "mountPath": "/host/run"}],
                        }
                    ],
                    "initContainers": [
                        {
                            "name": "install-multus-binary",
                            "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0-thick",
                            "command": ["/usr/src/multus-cni/bin/install_multus", "-d", "/host/opt/cni/bin"],
                            "resources": init_res,
                            "securityContext": {"privileged": True},
                            "volumeMounts": [
                                {
                                    "name": "cnibin",
                                    "mountPath": "/host/opt/cni/bin",
                                    "mountPropagation": "Bidirectional",
                                }
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "host-run", "hostPath": {"path": "/run"}},
                        {"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}},
                    ],
                },
            },
        },
    }


def install(ds: dict[str, Any]) -> Install:
    return read_install(ds, ds["spec"]["template"]["spec"]["containers"][0])


def oom_killed(ds: dict[str, Any]) -> dict[str, Any]:
    pod = sc.pod(ds, "node-1", running=True)
    pod["status"]["containerStatuses"][0].update(
        restartCount=3, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    )
    return pod


# --- M303 --------------------------------------------------------------------------------------
def test_oom_killed_burstable_pod_gets_limits_equal_to_requests_on_its_init_container() -> None:
    ds = thick_ds()
    inst = install(ds)
    killed = kill_evidence(inst, "node-1", oom_killed(ds), "")
    [f] = check_killed_burstable(inst, killed)
    assert f.code == "M303" and f.current == "Burstable" and f.nodes == ()
    assert {c.key: c.value for c in f.changes} == {
        "ds.initContainer.install-multus-binary.resources.limits.cpu": "10m",
        "ds.initContainer.install-multus-binary.resources.limits.memory": "15Mi",
    }


def test_kernel_oom_line_alone_is_evidence_of_a_kill() -> None:
    line = "Memory cgroup out of memory: Killed process 4242 (multus-daemon) total-vm:749764kB, anon-rss:39996kB"
    inst = install(thick_ds())
    assert [k.why for k in kill_evidence(inst, "node-1", None, line)] == [f"kernel: {line}"]
    other = "Memory cgroup out of memory: Killed process 4242 (java) total-vm:749764kB"
    assert kill_evidence(inst, "node-1", None, other) == []


def test_guaranteed_or_never_killed_raises_no_qos_warning() -> None:
    ds = thick_ds(init_limits=True)
    inst = install(ds)
    assert check_killed_burstable(inst, kill_evidence(inst, "node-1", oom_killed(ds), "")) == []
    burstable = install(thick_ds())
    assert check_killed_burstable(burstable, kill_evidence(burstable, "node-1", sc.pod(thick_ds(), "node-1"), "")) == []


def test_request_below_limit_is_raised_to_the_limit_and_missing_values_are_left_to_a_person() -> None:
    ds = thick_ds()
    main = ds["spec"]["template"]["spec"]["containers"][0]
    main["resources"]["requests"]["memory"] = "30Mi"
    inst = install(ds)
    [f] = check_killed_burstable(inst, kill_evidence(inst, "n", oom_killed(ds), ""))
    changes = {(c.key, c.value) for c in f.changes}
    assert ("ds.container.kube-multus.resources.requests.memory", "50Mi") in changes
    main["resources"]["requests"]["memory"] = "50Mi"
    del main["resources"]["limits"]["memory"]  # the daemon without a memory cap: no value to guess
    inst = install(ds)
    [f] = check_killed_burstable(inst, kill_evidence(inst, "n", oom_killed(ds), ""))
    assert f.changes == () and "container kube-multus has no memory limit" in f.remediation
    main["resources"]["limits"]["memory"] = "50Mi"
    del ds["spec"]["template"]["spec"]["initContainers"][0]["resources"]
    inst = install(ds)
    [f] = check_killed_burstable(inst, kill_evidence(inst, "n", oom_killed(ds), ""))
    assert f.changes == () and "install-multus-binary has neither a request nor a limit for cpu" in f.remediation


def test_evicted_pod_beside_its_running_replacement_is_a_qos_warning_not_a_down_node() -> None:
    ds = thick_ds()
    evicted = sc.pod(ds, "node-1")
    evicted["metadata"]["name"] += "-old"
    evicted["status"] = {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}
    for order in ((evicted, sc.pod(ds, "node-1")), (sc.pod(ds, "node-1"), evicted)):
        snap = Snapshot("t", nodes=(sc.node("node-1", "kubeadm"),), daemonsets=(ds,), pods=order)
        codes = {f.code: f for f in diagnose(snap).findings}
        assert "M201" not in codes  # the replacement serves the node
        assert "Evicted: The node was low on resource: memory." in codes["M303"].evidence[0]


# --- M304 --------------------------------------------------------------------------------------
def files(socket: bool, roots: tuple[str, ...] = ("/run/multus",)) -> NodeFiles:
    base = sc.node_files({"/run/multus/multus.sock": ""} if socket else {}, ["/run/multus"])
    return NodeFiles(base.entries, roots)


def test_socket_missing_from_the_listed_dir_is_an_error() -> None:
    [f] = check_socket(install(thick_ds()), files(socket=False), "/run/multus/", "")
    assert f.code == "M304" and f.current == "/run/multus/multus.sock"


def test_socket_present_or_dir_not_listed_or_thin_raises_nothing() -> None:
    inst = install(thick_ds())
    assert check_socket(inst, files(socket=True), "/run/multus/", "") == []
    # under a root that is not the socket dir itself (e.g. a listing one level up): not decided
    assert check_socket(inst, files(socket=False, roots=("/run",)), "/run/multus/", "") == []
    thin = copy.deepcopy(thick_ds())
    thin["spec"]["template"]["spec"]["containers"][0]["command"] = ["/thin_entrypoint"]
    assert check_socket(install(thin), files(socket=False), None, "") == []


def test_shim_error_names_the_missing_socket_without_node_files() -> None:
    line = 'CmdAdd (shim): failed to send CNI request: Post "http://dummy/cni": dial unix /run/multus/multus.sock: connect: no such file or directory'
    [f] = check_socket(install(thick_ds()), None, None, line)
    assert f.evidence == (f"shim: {line}",)
    # the shim of another socket dir is not this one's evidence
    assert check_socket(install(thick_ds()), None, "/run/multus/socket", line) == []


# --- M305 / M306 -------------------------------------------------------------------------------
def snapshot_with_log(ds: dict[str, Any], container: str, text: str) -> Snapshot:
    pod = sc.pod(ds, "node-1")
    return Snapshot(
        "t", nodes=(sc.node("node-1", "rke2"),), daemonsets=(ds,), pods=(pod,),
        logs={("kube-system", pod["metadata"]["name"], container, False): text},
    )  # fmt: skip


def unprivileged_init() -> dict[str, Any]:
    ds = thick_ds()
    del ds["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
    ds["spec"]["template"]["spec"]["initContainers"][0]["volumeMounts"][0].pop("mountPropagation")
    return ds


def test_permission_denied_on_a_host_mount_of_an_unprivileged_container_is_a_manual_check() -> None:
    ds = unprivileged_init()
    line = "cp: can't create '/host/opt/cni/bin/multus-shim': Permission denied"
    snap = snapshot_with_log(ds, "install-multus-binary", line)
    inst = install(ds)
    [f] = check_host_writes(inst, denials(snap, inst, "node-1", snap.pods[0]))
    assert f.code == "M306" and f.changes == () and "ausearch -m avc" in f.remediation and "spc_t" in f.remediation
    report = diagnose(snap)
    assert "M306" in {f.code for f in report.findings}
    go = "read /etc/os-release; open /host/opt/cni/bin/multus-shim.temp: permission denied"
    snap = snapshot_with_log(ds, "install-multus-binary", go)
    [d] = denials(snap, inst, "node-1", snap.pods[0])
    assert d.path == "/host/opt/cni/bin/multus-shim.temp" and not d.skipped


@pytest.mark.parametrize(
    ("security", "line"),
    [
        ({"privileged": True}, "cp: can't create '/host/opt/cni/bin/multus-shim': Permission denied"),
        ({"seLinuxOptions": {"type": "spc_t"}}, "cp: can't create '/host/opt/cni/bin/multus-shim': Permission denied"),
        ({}, "open /etc/passwd: permission denied"),  # not a path it mounts from the host
        ({}, "copied /host/opt/cni/bin/multus-shim"),
    ],
    ids=["privileged", "selinux-label", "not-a-host-mount", "no-denial"],
)
def test_no_host_write_finding(security: dict[str, Any], line: str) -> None:
    ds = unprivileged_init()
    if security:
        ds["spec"]["template"]["spec"]["initContainers"][0]["securityContext"] = security
    snap = snapshot_with_log(ds, "install-multus-binary", line)
    inst = install(ds)
    assert check_host_writes(inst, denials(snap, inst, "node-1", snap.pods[0])) == []


def test_socket_gone_while_the_daemon_runs_is_raised_and_while_it_is_down_is_evidence_of_m201() -> None:
    ds = thick_ds()
    node = sc.node("node-1", "kubeadm")
    running = Snapshot("t", nodes=(node,), daemonsets=(ds,), pods=(sc.pod(ds, "node-1"),),
                       node_files={"node-1": files(socket=False)})  # fmt: skip
    assert [f.code for f in diagnose(running).findings if f.code == "M304"] == ["M304"]
    down = replace(running, pods=(sc.pod(ds, "node-1", running=False, exit_code=1),))
    report = diagnose(down)
    assert "M304" not in {f.code for f in report.findings}
    [m201] = [f for f in report.findings if f.code == "M201"]
    assert any("no multus.sock" in e for e in m201.evidence)


# --- M307 --------------------------------------------------------------------------------------
def with_status(ds: dict[str, Any], message: str, reason: str = "StartError") -> dict[str, Any]:
    pod = sc.pod(ds, "node-1", running=False, exit_code=128)
    pod["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 128, "reason": reason, "message": message}
    }
    return pod


def test_thin_command_in_the_thick_image_cannot_start() -> None:
    ds = thick_ds()
    main = ds["spec"]["template"]["spec"]["containers"][0]
    main["command"] = ["/thin_entrypoint"]
    msg = 'failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/thin_entrypoint": stat /thin_entrypoint: no such file or directory: unknown'
    [f] = check_start_errors(install(ds), "node-1", with_status(ds, msg))
    assert f.code == "M307" and f.current == "/thin_entrypoint"
    assert [(c.key, c.value, c.container) for c in f.changes] == [
        ("ds.image", "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0", name)
        for name in ("kube-multus", "install-multus-binary")  # both run the -thick image
    ]


def test_start_error_seen_on_one_node_is_fixed_for_the_whole_daemonset() -> None:
    from kubectl_multus.core.planner import build_plan

    ds = thick_ds()
    for c in ds["spec"]["template"]["spec"]["containers"]:
        c["command"] = ["/thin_entrypoint"]
    msg = 'runc create failed: unable to start container process: exec: "/thin_entrypoint": stat /thin_entrypoint: no such file or directory: unknown'
    failing = with_status(ds, msg)
    starting = sc.pod(ds, "node-2", running=False)  # still in its first back-off: nothing said yet
    starting["status"]["containerStatuses"][0]["lastState"] = {}
    snap = Snapshot(
        "t",
        nodes=(sc.node("node-1", "kubeadm"), sc.node("node-2", "kubeadm")),
        daemonsets=(ds,),
        pods=(failing, starting),
    )
    report = diagnose(snap)
    [f] = [f for f in report.findings if f.code == "M307"]
    assert f.nodes == ()
    plan = build_plan(report, snap)
    assert not plan.conflicts and {c.value for c in plan.changes if c.key == "ds.image"} == {
        "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0"
    }


def test_not_shared_host_mount_is_named_with_what_to_run() -> None:
    ds = thick_ds()
    msg = 'failed to generate container "abc" spec: failed to generate spec: path "/run/netns" is mounted on "/run" but it is not a shared or slave mount'
    [f] = check_start_errors(install(ds), "node-1", with_status(ds, msg, "CreateContainerError"))
    assert (
        f.current == "/run" and "shared or slave" in f.message and "findmnt -o TARGET,PROPAGATION /run" in f.remediation
    )


def test_ordinary_crash_is_no_start_error() -> None:
    ds = thick_ds()
    assert check_start_errors(install(ds), "node-1", with_status(ds, "", "Error")) == []
    assert check_start_errors(install(ds), "node-1", sc.pod(ds, "node-1")) == []


# --- M118 --------------------------------------------------------------------------------------
def test_bidirectional_without_privileged_is_fixed_by_privileged() -> None:
    ds = thick_ds()
    del ds["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
    [f] = check_propagation(install(ds))
    assert f.code == "M118" and [(c.key, c.value) for c in f.changes] == [
        ("ds.initContainer.install-multus-binary.securityContext.privileged", "true")
    ]
    assert check_propagation(install(thick_ds())) == []  # the upstream init container is privileged
    snap = Snapshot("t", nodes=(sc.node("node-1", "kubeadm"),), daemonsets=(ds,))
    assert [f.field for f in diagnose(snap).findings if f.code == "M118"] == [f.field]


def test_findings_of_the_pod_keep_a_healthy_snapshot_clean() -> None:
    ds = thick_ds()
    snap = Snapshot("t", nodes=(sc.node("node-1", "kubeadm"),), daemonsets=(ds,), pods=(sc.pod(ds, "node-1"),))
    codes = {f.code for f in diagnose(replace(snap)).findings}
    assert not codes & {"M118", "M303", "M304", "M305", "M306", "M307"}


# --- what is read on the node ------------------------------------------------------------------
def test_thick_install_lists_the_socket_dir_but_a_helper_pod_does_not_mount_run() -> None:
    from kubectl_multus.core.capture import SHIM_SOCKET_DIR, for_helper, helper_volumes, plan

    node = sc.node("node-1", "kubeadm")
    thick = plan(install(thick_ds()), node)
    assert SHIM_SOCKET_DIR in thick.listings
    assert "/run" not in helper_volumes(for_helper(thick).roots)
    thin = copy.deepcopy(thick_ds())
    thin["spec"]["template"]["spec"]["containers"][0]["command"] = ["/thin_entrypoint"]
    assert SHIM_SOCKET_DIR not in plan(install(thin), node).listings
