"""The simulated Multus containers against what the real ones did (`shared/fixtures/observed/`),
plus the runtime behaviour those runs depend on (pinned hostPaths, read-only ConfigMaps, waits)."""

from __future__ import annotations

import copy
import errno
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from simcluster.process import Clock, ContainerContext, Ready, Wait, run_alone
from simcluster.runtime import PodSandbox, VolumeError, program
from tests.sim.observed import FLANNEL, START, host_listing, make_node, observed_params, span, strip, write

HORIZON = 300.0
NODE = {"metadata": {"name": "node-1"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.11"}]}}
UPSTREAM_DAEMON_CONFIG = {
    "chrootDir": "/hostroot",
    "cniVersion": "0.3.1",
    "logLevel": "verbose",
    "logToStderr": True,
    "cniConfigDir": "/host/etc/cni/net.d",
    "multusAutoconfigDir": "/host/etc/cni/net.d",
    "multusConfigFile": "auto",
    "socketDir": "/host/run/multus/",
}
THICK_IMAGE = "ghcr.io/k8snetworkplumbingwg/multus-cni:snapshot-thick"
THIN_IMAGE = "ghcr.io/k8snetworkplumbingwg/multus-cni:snapshot"


def pod_from(manifest: list[dict[str, Any]]) -> dict[str, Any]:
    ds = next(o for o in manifest if o["kind"] == "DaemonSet")
    template = ds["spec"]["template"]
    return {
        "metadata": {
            "name": f"{ds['metadata']['name']}-x7k2p",
            "namespace": ds["metadata"].get("namespace", "default"),
            "labels": dict(template["metadata"].get("labels") or {}),
        },
        "spec": {**copy.deepcopy(template["spec"]), "nodeName": "node-1"},
    }


def configmaps(manifest: list[dict[str, Any]]) -> Callable[[str, str], dict[str, Any] | None]:
    found = {
        (o["metadata"].get("namespace", "default"), o["metadata"]["name"]): o
        for o in manifest
        if o["kind"] == "ConfigMap"
    }
    return lambda ns, name: found.get((ns, name))


def context(sandbox: PodSandbox, container: dict[str, Any], clock: Clock) -> ContainerContext:
    fs = sandbox.container_fs(container)
    return ContainerContext(sandbox.pod, container, fs, "node-1", clock, env=sandbox.env(container, NODE))


@dataclass
class PodRun:
    exit_code: int  # 124: still running at the horizon
    lines: list[str]  # init lines prefixed `[init <name>] `, then the main container's
    main_lines: list[str]
    main: ContainerContext


def run_pod(pod: dict[str, Any], sandbox: PodSandbox, clock: Clock) -> PodRun:
    """Init containers in order, then the main container, each by itself."""
    lines: list[str] = []
    for init in pod["spec"].get("initContainers") or []:
        ctx = context(sandbox, init, clock)
        outcome = run_alone(program(init, init=True), ctx, horizon=HORIZON)
        lines += [f"[init {init['name']}] {line}" for _, line in ctx.lines]
        assert outcome.exit_code == 0, lines
    main = pod["spec"]["containers"][0]
    ctx = context(sandbox, main, clock)
    outcome = run_alone(program(main, init=False), ctx, horizon=HORIZON)
    main_lines = [line for _, line in ctx.lines]
    code = 124 if outcome.exit_code is None else outcome.exit_code
    return PodRun(code, lines + main_lines, main_lines, ctx)


# --- the observed runs -------------------------------------------------------------------------
@pytest.fixture
def observed(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, Any], PodRun, Path]:
    path: Path = request.param
    scenario = yaml.safe_load(path.read_text())
    node_root = make_node(
        tmp_path / "node",
        scenario["node_distribution"],
        scenario["node_cni_conf_dir"],
        scenario.get("host_files_before"),
    )
    pod = pod_from(scenario["manifest"])
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", configmaps(scenario["manifest"]))
    return scenario, run_pod(pod, sandbox, Clock(start=START)), node_root


@pytest.mark.parametrize("observed", observed_params(), indirect=True)
def test_model_matches_observed_run(observed: tuple[dict[str, Any], PodRun, Path]) -> None:
    scenario, run, node_root = observed
    assert run.exit_code == scenario["exit_code"], run.lines
    expected = [strip(line) for line in scenario["last_lines"]]
    assert [strip(line) for line in run.lines[-len(expected) :]] == expected
    assert host_listing(node_root) == set(scenario["host_files_after"])
    for path, content in (scenario.get("multus_written") or {}).items():
        assert json.loads((node_root / path.lstrip("/")).read_text()) == content, path
    # The waits: 120 s for a primary config, 45 s for a readiness file (and no wait elsewhere).
    wanted = span([line for line in scenario["last_lines"] if not line.startswith("[init ")])
    if wanted > 1:
        assert span(run.main_lines) == wanted
    else:
        assert span(run.main_lines) <= 1


# --- waits ---------------------------------------------------------------------------------------
def thick_pod(
    daemon_config: dict[str, Any], *, conf_host: str = "/etc/cni/net.d"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The upstream thick DaemonSet's pod (daemon container only), and its ConfigMap."""
    container = {
        "name": "kube-multus",
        "image": THICK_IMAGE,
        "command": ["/usr/src/multus-cni/bin/multus-daemon"],
        "env": [{"name": "MULTUS_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "volumeMounts": [
            {"name": "cni", "mountPath": "/host/etc/cni/net.d"},
            {"name": "host-run", "mountPath": "/host/run"},
            {"name": "multus-daemon-config", "mountPath": "/etc/cni/net.d/multus.d", "readOnly": True},
            {"name": "hostroot", "mountPath": "/hostroot"},
        ],
    }
    pod = {
        "metadata": {"name": "kube-multus-ds-abcde", "namespace": "kube-system"},
        "spec": {
            "nodeName": "node-1",
            "hostNetwork": True,
            "containers": [container],
            "volumes": [
                {"name": "cni", "hostPath": {"path": conf_host}},
                {"name": "host-run", "hostPath": {"path": "/run"}},
                {"name": "hostroot", "hostPath": {"path": "/"}},
                {"name": "multus-daemon-config", "configMap": {"name": "multus-daemon-config"}},
            ],
        },
    }
    cm = {"metadata": {"name": "multus-daemon-config"}, "data": {"daemon-config.json": json.dumps(daemon_config)}}
    return pod, cm


def test_thick_picks_up_a_primary_config_written_during_its_wait(tmp_path: Path) -> None:
    node_root = tmp_path / "node"
    (node_root / "etc/cni/net.d").mkdir(parents=True)
    pod, cm = thick_pod(UPSTREAM_DAEMON_CONFIG)
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: cm)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    ctx.at = START
    gen = program(pod["spec"]["containers"][0], init=False)(ctx)
    step = next(gen)
    assert isinstance(step, Wait) and step.seconds == 120 and step.until is not None
    ctx.at += 30  # half a minute of empty directory
    assert not step.until()
    write(node_root, "/etc/cni/net.d/10-flannel.conflist", json.dumps(FLANNEL))
    assert step.until()
    assert isinstance(gen.send(True), Ready)
    conf = json.loads((node_root / "etc/cni/net.d/00-multus.conf").read_text())
    assert conf["clusterNetwork"] == "/host/etc/cni/net.d/10-flannel.conflist"
    generated = [line for _, line in ctx.lines if "Generated MultusCNI config" in line]
    assert generated and generated[0].startswith(Clock.stamp(START + 30))


def test_thick_waits_45_s_for_the_readiness_file_and_goes_on_when_it_appears(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "kubeadm", "/etc/cni/net.d")
    pod, cm = thick_pod({**UPSTREAM_DAEMON_CONFIG, "readinessindicatorfile": "/host/run/flannel/subnet.env"})
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: cm)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    gen = program(pod["spec"]["containers"][0], init=False)(ctx)
    step = next(gen)
    assert isinstance(step, Wait) and step.seconds == 45 and step.until is not None and not step.until()
    write(node_root, "/run/flannel/subnet.env", "FLANNEL_NETWORK=10.42.0.0/16\n")
    assert isinstance(gen.send(True), Ready)
    assert [strip(line) for _, line in ctx.lines][1:3] == [
        "[verbose] Readiness Indicator file check",
        "[verbose] Readiness Indicator file check done!",
    ]


# --- thick: failures and stop ----------------------------------------------------------------------
def test_thick_host_path_in_cni_config_dir_exits_3(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "k3s", "/var/lib/rancher/k3s/agent/etc/cni/net.d")
    config = {**UPSTREAM_DAEMON_CONFIG, "cniConfigDir": "/var/lib/rancher/k3s/agent/etc/cni/net.d"}
    pod, cm = thick_pod(config, conf_host="/var/lib/rancher/k3s/agent/etc/cni/net.d")
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: cm)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    outcome = run_alone(program(pod["spec"]["containers"][0], init=False), ctx, horizon=10)
    assert outcome.exit_code == 3
    cause = "open /var/lib/rancher/k3s/agent/etc/cni/net.d/00-multus.conf: no such file or directory"
    assert [strip(line) for _, line in ctx.lines][-2:] == [
        f"[error] failed to persist the multus configuration: {cause}",
        f"[error] failed to start config manager: failed to persist the multus configuration: {cause}",
    ]


def test_thick_without_its_config_file_panics_and_exits_1(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "kubeadm", "/etc/cni/net.d")
    pod, _ = thick_pod(UPSTREAM_DAEMON_CONFIG)
    pod["spec"]["volumes"][-1]["configMap"]["optional"] = True  # the ConfigMap does not exist
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: None)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    outcome = run_alone(program(pod["spec"]["containers"][0], init=False), ctx, horizon=10)
    assert outcome.exit_code == 1
    assert strip(ctx.lines[0][1]) == (
        "[panic] startMultusDaemon failed to load the CNI server configuration: "
        "open /etc/cni/net.d/multus.d/daemon-config.json: no such file or directory"
    )


def test_thick_stop_removes_its_conf(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "kubeadm", "/etc/cni/net.d")
    pod, cm = thick_pod(UPSTREAM_DAEMON_CONFIG)
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: cm)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    outcome = run_alone(program(pod["spec"]["containers"][0], init=False), ctx, horizon=5)
    assert outcome.exit_code is None and outcome.ready
    assert (node_root / "etc/cni/net.d/00-multus.conf").is_file()
    for hook in ctx.on_stop:
        hook()
    assert not (node_root / "etc/cni/net.d/00-multus.conf").exists()
    assert strip(ctx.lines[-2][1]) == "[verbose] Delete old config @ /host/etc/cni/net.d/00-multus.conf"


def test_shell_wrapped_daemon_takes_its_options_from_the_environment(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "kubeadm", "/etc/cni/net.d")
    pod, cm = thick_pod(UPSTREAM_DAEMON_CONFIG)
    container = pod["spec"]["containers"][0]
    container["command"] = ["/bin/bash", "-ec", "set -x\nexec /usr/src/multus-cni/bin/multus-daemon $MULTUS_DAEMON_OPT"]
    container["env"].append({"name": "MULTUS_DAEMON_OPT", "value": "-config /etc/missing.json"})
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: cm)
    ctx = context(sandbox, container, Clock(start=START))
    assert run_alone(program(container, init=False), ctx, horizon=10).exit_code == 1
    assert strip(ctx.lines[0][1]).endswith("configuration: open /etc/missing.json: no such file or directory")


# --- thin --------------------------------------------------------------------------------------------
def thin_pod(*args: str) -> dict[str, Any]:
    container = {
        "name": "kube-multus",
        "image": THIN_IMAGE,
        "command": ["/thin_entrypoint"],
        "args": list(args),
        "volumeMounts": [
            {"name": "cni", "mountPath": "/host/etc/cni/net.d"},
            {"name": "cnibin", "mountPath": "/host/opt/cni/bin"},
        ],
    }
    return {
        "metadata": {"name": "kube-multus-ds-abcde", "namespace": "kube-system"},
        "spec": {
            "nodeName": "node-1",
            "containers": [container],
            "volumes": [
                {"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}},
                {"name": "cnibin", "hostPath": {"path": "/opt/cni/bin"}},
            ],
        },
    }


def test_thin_stop_hook_removes_its_conf(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "kubeadm", "/etc/cni/net.d")
    pod = thin_pod("--multus-conf-file=auto", "--cleanup-config-on-exit=true")
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: None)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    outcome = run_alone(program(pod["spec"]["containers"][0], init=False), ctx, horizon=5)
    assert outcome.exit_code is None and outcome.ready
    assert ctx.lines[-1][1] == "Entering watch loop..."
    conf = node_root / "etc/cni/net.d/00-multus.conflist"
    assert conf.is_file() and (node_root / "opt/cni/bin/multus").is_file()
    kubeconfig = yaml.safe_load((node_root / "etc/cni/net.d/multus.d/multus.kubeconfig").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://[10.43.0.1]:443"
    assert kubeconfig["users"][0]["user"]["token"].count(".") == 2
    for hook in ctx.on_stop:
        hook()
    assert not conf.exists()
    assert (node_root / "etc/cni/net.d/10-flannel.conflist").is_file()


def test_thin_without_cleanup_leaves_no_stop_hook(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "kubeadm", "/etc/cni/net.d")
    pod = thin_pod("--multus-conf-file=auto")
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: None)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    assert run_alone(program(pod["spec"]["containers"][0], init=False), ctx, horizon=5).exit_code is None
    assert ctx.on_stop == []


def test_thin_rejects_a_cni_version_other_than_the_masters(tmp_path: Path) -> None:
    node_root = make_node(tmp_path / "node", "kubeadm", "/etc/cni/net.d")
    pod = thin_pod("--cni-version=0.3.1")
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: None)
    ctx = context(sandbox, pod["spec"]["containers"][0], Clock(start=START))
    assert run_alone(program(pod["spec"]["containers"][0], init=False), ctx, horizon=5).exit_code == 0
    assert ctx.lines[-1][1] == (
        'failed to create multus config: Multus cni version is "0.3.1" while master plugin cni version is "1.0.0"'
    )


# --- the runtime ---------------------------------------------------------------------------------------
def test_host_path_through_a_symlink_is_pinned_when_the_pod_starts(tmp_path: Path) -> None:
    node_root = tmp_path / "node"
    data = node_root / "var/lib/rancher/k3s/data"
    for version in ("aaa", "bbb"):
        (data / version / "bin").mkdir(parents=True)
    (data / "current").symlink_to("aaa")
    pod = thin_pod()
    pod["spec"]["volumes"][1]["hostPath"]["path"] = "/var/lib/rancher/k3s/data/current/bin"
    container = pod["spec"]["containers"][0]
    sandbox = PodSandbox(pod, node_root, tmp_path / "work", lambda ns, name: None)
    (data / "current").unlink()
    (data / "current").symlink_to("bbb")  # a k3s upgrade while the pod runs
    sandbox.container_fs(container).write_bytes("/host/opt/cni/bin/multus", b"x")
    assert (data / "aaa/bin/multus").is_file() and not (data / "bbb/bin/multus").exists()
    restarted = PodSandbox(pod, node_root, tmp_path / "work2", lambda ns, name: None)
    restarted.container_fs(container).write_bytes("/host/opt/cni/bin/shim", b"x")
    assert (data / "bbb/bin/shim").is_file()


def test_missing_host_path_is_created_empty_unless_its_type_forbids_it(tmp_path: Path) -> None:
    node_root = tmp_path / "node"
    node_root.mkdir()
    PodSandbox(thin_pod(), node_root, tmp_path / "work", lambda ns, name: None)
    assert (node_root / "etc/cni/net.d").is_dir() and (node_root / "opt/cni/bin").is_dir()
    pod = thin_pod()
    pod["spec"]["volumes"][0]["hostPath"] = {"path": "/etc/nope", "type": "Directory"}
    with pytest.raises(VolumeError) as err:
        PodSandbox(pod, node_root, tmp_path / "work2", lambda ns, name: None)
    assert str(err.value) == "hostPath type check failed: /etc/nope is not a directory"
    assert (
        err.value.event
        == 'MountVolume.SetUp failed for volume "cni" : hostPath type check failed: /etc/nope is not a directory'
    )
    assert not (node_root / "etc/nope").exists()


def test_host_path_on_a_read_only_host_filesystem(tmp_path: Path) -> None:
    """GKE's Container-Optimized OS: /opt is on the read-only root, so the runtime cannot create
    /opt/cni/bin (multus-cni#620), and an existing directory there is mounted read-only."""
    node_root = tmp_path / "node"
    (node_root / "opt/tools").mkdir(parents=True)
    with pytest.raises(VolumeError) as err:
        PodSandbox(thin_pod(), node_root, tmp_path / "work", lambda ns, name: None, read_only=("/opt",))
    assert str(err.value) == 'failed to mkdir "/opt/cni/bin": mkdir /opt/cni: read-only file system'
    assert not (node_root / "opt/cni").exists()
    pod = thin_pod()
    pod["spec"]["volumes"][1]["hostPath"]["path"] = "/opt/tools"
    sandbox = PodSandbox(pod, node_root, tmp_path / "work2", lambda ns, name: None, read_only=("/opt",))
    with pytest.raises(OSError) as write_err:
        sandbox.container_fs(pod["spec"]["containers"][0]).write_bytes("/host/opt/cni/bin/multus", b"x")
    assert write_err.value.errno == errno.EROFS and not (node_root / "opt/tools/multus").exists()
    writable = PodSandbox(pod, node_root, tmp_path / "work3", lambda ns, name: None)
    writable.container_fs(pod["spec"]["containers"][0]).write_bytes("/host/opt/cni/bin/multus", b"x")
    assert (node_root / "opt/tools/multus").is_file()


def test_configmap_volume_is_read_only_and_follows_updates_except_through_subpath(tmp_path: Path) -> None:
    cms: dict[str, dict[str, Any]] = {"cfg": {"metadata": {"name": "cfg"}, "data": {"a.json": "1", "b.json": "2"}}}
    container = {
        "name": "c",
        "image": "busybox",
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "cfg", "mountPath": "/tmp/a.json", "subPath": "a.json"},
        ],
    }
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "kube-system"},
        "spec": {"containers": [container], "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]},
    }
    sandbox = PodSandbox(pod, tmp_path / "node", tmp_path / "work", lambda ns, name: cms.get(name))
    fs = sandbox.container_fs(container)
    assert fs.read_text("/etc/cfg/a.json") == "1" and fs.read_text("/tmp/a.json") == "1"
    for path in ("/etc/cfg/a.json", "/etc/cfg/new"):
        with pytest.raises(OSError) as err:
            fs.write_bytes(path, b"x")
        assert err.value.errno == errno.EROFS
    cms["cfg"]["data"] = {"a.json": "10"}
    sandbox.refresh_configmaps()
    assert fs.read_text("/etc/cfg/a.json") == "10" and not fs.exists("/etc/cfg/b.json")
    assert fs.read_text("/tmp/a.json") == "1"  # a subPath mount keeps the version it started with
    assert fs.read_text("/var/run/secrets/kubernetes.io/serviceaccount/namespace") == "kube-system"
    pod["spec"]["volumes"][0]["configMap"]["name"] = "other"
    with pytest.raises(VolumeError, match='configmap "other" not found'):
        PodSandbox(pod, tmp_path / "node", tmp_path / "work2", lambda ns, name: cms.get(name))


def test_each_start_begins_from_the_image(tmp_path: Path) -> None:
    pod = thin_pod()
    container = pod["spec"]["containers"][0]
    sandbox = PodSandbox(pod, tmp_path / "node", tmp_path / "work", lambda ns, name: None)
    first = sandbox.container_fs(container)
    assert first.is_file("/thin_entrypoint") and first.is_file("/usr/src/multus-cni/bin/multus-shim")
    first.write_bytes("/scratch", b"x")
    assert not sandbox.container_fs(container).exists("/scratch")


def test_env_resolves_field_refs(tmp_path: Path) -> None:
    pod = thin_pod()
    container = pod["spec"]["containers"][0]
    container["env"] = [
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "WHERE", "value": "$(NODE)/$(IP)"},
    ]
    env = PodSandbox(pod, tmp_path / "node", tmp_path / "work", lambda ns, name: None).env(container, NODE)
    assert env["WHERE"] == "node-1/10.0.0.11"
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("10.43.0.1", "443")
