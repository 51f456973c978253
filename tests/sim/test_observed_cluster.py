"""Each observed run of the real Multus, replayed by the whole simulated cluster: the
DaemonSet controller starts the pod, the kubelet runs it on the virtual clock, and the real
client reads back what a user would see: pod status, restarts, exit codes and logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from simcluster.cluster import Cluster
from simcluster.process import Clock
from tests.sim.conftest import node
from tests.sim.observed import START, host_listing, make_node, observed_params, strip

SETTLE = 121  # virtual seconds: just past the thick daemon's 120 s wait for a primary config


def multus_pod(core: Any, ns: str) -> Any:
    pods = core.list_namespaced_pod(ns, field_selector="spec.nodeName=node-1").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


@pytest.mark.parametrize("path", observed_params())
def test_cluster_replays_observed_run(path: Path, tmp_path: Path) -> None:
    from kubernetes import client as k
    from kubernetes import config

    scenario = yaml.safe_load(path.read_text())
    sim = Cluster(tmp_path / "sim", clock=Clock(start=START))
    sim.add(node("node-1"))
    make_node(
        sim.node_root("node-1"),
        scenario["node_distribution"],
        scenario["node_cni_conf_dir"],
        scenario.get("host_files_before"),
    )
    for obj in scenario["manifest"]:
        sim.add(obj)
    ns = next(o for o in scenario["manifest"] if o["kind"] == "DaemonSet")["metadata"]["namespace"]
    with sim:
        api = config.new_client_from_config(config_file=str(sim.kubeconfig), persist_config=False)
        core = k.CoreV1Api(api)
        sim.advance(SETTLE)
        pod = multus_pod(core, ns)
        main = pod.status.container_statuses[0]
        ended = main.last_state.terminated or main.state.terminated
        if scenario["exit_code"] == 124:
            assert ended is None and main.state.running is not None and main.ready
            assert pod.status.phase == "Running"
        else:
            assert ended is not None and ended.exit_code == scenario["exit_code"]
            assert ended.reason == ("Completed" if scenario["exit_code"] == 0 else "Error")
            if main.state.waiting is not None:  # between restarts
                assert main.state.waiting.reason == "CrashLoopBackOff" and not main.ready
            else:  # already running again (no readiness probe upstream, so it counts as ready)
                assert main.state.running is not None and main.restart_count > 0

        lines = []
        for init in pod.spec.init_containers or []:
            text = core.read_namespaced_pod_log(pod.metadata.name, ns, container=init.name)
            lines += [f"[init {init.name}] {line}" for line in text.splitlines()]
        # A container that crashed and runs again: what it printed when it ended is --previous.
        again = main.state.running is not None and main.restart_count > 0
        lines += core.read_namespaced_pod_log(pod.metadata.name, ns, container=main.name, previous=again).splitlines()
        want = [strip(line) for line in scenario["last_lines"]]
        assert [strip(line) for line in lines][-len(want) :] == want

        assert host_listing(sim.node_root("node-1")) == set(scenario["host_files_after"])
        for host_path, content in scenario["multus_written"].items():
            assert json.loads((sim.node_root("node-1") / host_path.lstrip("/")).read_text()) == content
        api.close()


def test_crash_looping_thin_pod_restarts_with_back_off_and_keeps_its_previous_log(tmp_path: Path) -> None:
    """What an operator sees on the motivating case: Completed, restarts, the error only in the logs."""
    from kubernetes import client as k
    from kubernetes import config

    example = Path(__file__).resolve().parents[2] / "examples" / "k3s-thin-doubled-prefix"
    sim = Cluster(tmp_path / "sim", clock=Clock(start=START))
    sim.load_dump(example)
    with sim:
        api = config.new_client_from_config(config_file=str(sim.kubeconfig), persist_config=False)
        core = k.CoreV1Api(api)
        pod = core.list_namespaced_pod("kube-system", label_selector="app=multus").items[0]
        name = pod.metadata.name
        sim.advance(75)  # exits at 0, 10, 30 and 70 s: restarted three times
        pod = core.read_namespaced_pod(name, "kube-system")
        main = pod.status.container_statuses[0]
        assert (main.restart_count, main.state.waiting.reason, main.last_state.terminated.reason) == (
            3,
            "CrashLoopBackOff",
            "Completed",
        )
        assert "back-off 1m20s restarting failed container=kube-multus" in main.state.waiting.message
        previous = core.read_namespaced_pod_log(name, "kube-system", container="kube-multus", previous=True)
        assert previous.startswith(
            "cni-conf-dir is not found: stat /host/var/lib/rancher/k3s/agent/var/lib/rancher/k3s/agent/etc/cni/net.d"
        )
        assert core.read_namespaced_pod_log(name, "kube-system", container="kube-multus", tail_lines=1) == previous
        api.close()


def test_multi_node_cluster_breaks_only_where_the_node_differs(tmp_path: Path) -> None:
    """k3s-multinode-one-broken: the same DaemonSet on three nodes, only k3s-2 lacks what it needs."""
    from kubernetes import client as k
    from kubernetes import config

    example = Path(__file__).resolve().parents[2] / "examples" / "k3s-multinode-one-broken"
    sim = Cluster(tmp_path / "sim", clock=Clock(start=START))
    sim.load_dump(example)
    with sim:
        sim.advance(150)
        api = config.new_client_from_config(config_file=str(sim.kubeconfig), persist_config=False)
        core = k.CoreV1Api(api)
        ready = {}
        for pod in core.list_namespaced_pod("kube-system", label_selector="app=multus").items:
            ready[pod.spec.node_name] = pod.status.container_statuses[0].ready
        assert ready == {"k3s-1": True, "k3s-2": False, "k3s-3": True}
        api.close()
