"""diagnose, show-paths and dump against live simulated clusters: one model, two sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_multus.errors import ExitStatus
from simcluster.admission import Deny
from simcluster.cluster import Cluster, ErrorRule
from tests.cli.test_cli import EXPECTED
from tests.e2e.conftest import EXAMPLES, cli, findings, helper_pods, sim_from
from tests.sim.conftest import node
from tests.sim.observed import make_node, observed_params

KC = "--kubeconfig"


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_live_diagnosis_equals_the_diagnosis_of_its_own_dump(example: str, tmp_path: Path) -> None:
    with sim_from(EXAMPLES / example, tmp_path) as sim:
        live = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        assert live.exit_code == EXPECTED[example][0], live.output
        codes = {f["code"] for f in findings(live) if f["severity"] in ("warning", "error")}
        assert codes == EXPECTED[example][1]  # what the offline path finds on the bundled dump
        paths_live = json.loads(cli("show-paths", KC, str(sim.kubeconfig), "-o", "json").stdout)
        dumped = cli("dump", str(tmp_path / "dump"), KC, str(sim.kubeconfig))
        assert dumped.exit_code == 0, dumped.output
        assert helper_pods(sim) == []
    offline = cli("diagnose", "--from-dump", str(tmp_path / "dump"), "-o", "json")
    assert offline.exit_code == live.exit_code
    assert findings(offline) == findings(live)
    paths_offline = json.loads(cli("show-paths", "--from-dump", str(tmp_path / "dump"), "-o", "json").stdout)
    assert paths_offline["installs"] == paths_live["installs"] and paths_live["installs"][0]["nodes"][0]["paths"]


@pytest.mark.parametrize("path", observed_params())
def test_live_verdict_matches_the_real_multus(path: Path, tmp_path: Path) -> None:
    scenario = yaml.safe_load(path.read_text())
    sim = Cluster(tmp_path / "sim")
    sim.add(
        node(
            "node-1",
            {"node-role.kubernetes.io/control-plane": ""} if scenario["node_distribution"] == "kubeadm" else {},
        )
    )
    if scenario["node_distribution"] == "kubeadm":
        sim.store.find(sim.kind("nodes"), "", "node-1")["status"]["nodeInfo"]["kubeletVersion"] = "v1.31.4"  # type: ignore[index]
    make_node(
        sim.node_root("node-1"),
        scenario["node_distribution"],
        scenario["node_cni_conf_dir"],
        scenario.get("host_files_before"),
        primary_plugins=True,
    )
    for obj in scenario["manifest"]:
        sim.add(obj)
    with sim:
        sim.advance(121)
        r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
    want = ExitStatus.OK if scenario["verdict"] == "pass" else ExitStatus.PROBLEMS
    assert r.exit_code == want, r.stdout


@pytest.mark.parametrize("example_sim", ["k3s-multinode-one-broken"], indirect=True)
def test_only_the_broken_node_is_flagged(example_sim: Cluster) -> None:
    r = cli("diagnose", KC, str(example_sim.kubeconfig), "-o", "json")
    assert r.exit_code == 1
    flagged = {n for f in findings(r) if f["severity"] == "error" for n in f["nodes"]}
    assert flagged == {"k3s-2"}
    r = cli("diagnose", KC, str(example_sim.kubeconfig), "--node", "k3s-1")
    assert r.exit_code == 0, r.stdout


def counts(sim: Cluster) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in sim.requests:
        out[r.verb] = out.get(r.verb, 0) + 1
    return out


def grow(sim: Cluster, extra: int) -> None:
    for i in range(extra):
        sim.add(node(f"extra-{i}"))
        make_node(sim.node_root(f"extra-{i}"), "kubeadm", "/etc/cni/net.d", primary_plugins=True)
    sim.sync()
    sim.requests.clear()


def test_list_calls_do_not_grow_with_nodes(tmp_path: Path) -> None:
    """Upstream Multus images are distroless: one exec finds that out, then every node is read
    through a helper pod (create, wait, tar, find, delete); lists stay the same."""
    lists = []
    for extra in (1, 4):
        with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path / str(extra)) as sim:
            grow(sim, extra)
            assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 0
            seen, nodes = counts(sim), 3 + extra
            assert seen["exec"] == 2 * nodes + 1
            assert seen["create"] == seen["delete"] == nodes
            assert seen["get"] <= 2 * nodes  # waiting for the helper to run
            assert seen["log"] == nodes  # current log only: nothing restarted
            lists.append(seen["list"])
            assert helper_pods(sim) == []
    assert lists[0] == lists[1] <= 6


def test_multus_image_with_tools_is_read_by_exec_without_helpers(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path) as sim:
        ds = sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")
        containers = ds["spec"]["template"]["spec"]["containers"]
        containers[0]["image"] = "quay.io/openshift/origin-multus-cni:4.16"  # RHEL-based: has tar and find
        sim.store.replace(sim.kind("daemonsets", "apps"), ds)
        grow(sim, 2)
        assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 0
        seen = counts(sim)
        assert seen["exec"] == 2 * 5 and seen.get("create", 0) == 0


@pytest.mark.parametrize("example_sim", ["k3s-thin-doubled-prefix"], indirect=True)
def test_crash_looping_node_is_read_through_a_helper_pod_that_is_removed(example_sim: Cluster) -> None:
    r = cli("diagnose", KC, str(example_sim.kubeconfig), "-o", "json")
    assert r.exit_code == 1
    made = [q for q in example_sim.requests if q.verb == "create" and q.resource == "pods"]
    gone = [q for q in example_sim.requests if q.verb == "delete" and q.resource == "pods"]
    assert len(made) == 1 and len(gone) == 1 and helper_pods(example_sim) == [], (r.stderr, example_sim.requests[-6:])
    node = json.loads(r.stdout)["installs"][0]["nodes"][0]
    assert node["files"] == "checked"


@pytest.mark.parametrize("example_sim", ["kubeadm-healthy"], indirect=True)
def test_flags_before_or_after_the_command(example_sim: Cluster) -> None:
    kc = str(example_sim.kubeconfig)
    assert cli(KC, kc, "--context", "sim", "diagnose").exit_code == 0
    assert cli("diagnose", KC, kc, "--context", "sim").exit_code == 0
    r = cli(KC, kc, "diagnose", "--context", "nope")
    assert r.exit_code == 3 and 'context "nope" not found' in r.stderr


def one_line(r: Any, status: int, text: str) -> None:
    assert r.exit_code == status, r.output
    assert text in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == ""


def test_unreachable_api_server(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = tmp_path / "kc"
    from simcluster.cluster import kubeconfig

    kc.write_text(yaml.safe_dump(kubeconfig(f"http://127.0.0.1:{port}")))
    one_line(cli("diagnose", KC, str(kc)), 3, f"cannot reach the API server at http://127.0.0.1:{port}")


@pytest.mark.parametrize("example_sim", ["kubeadm-healthy"], indirect=True)
def test_unknown_node_names_the_nodes_there_are(example_sim: Cluster) -> None:
    r = cli("diagnose", KC, str(example_sim.kubeconfig), "--node", "nope")
    one_line(r, 3, "node nope not found; the cluster's nodes: control-plane, worker-1, worker-2")


def test_api_server_name_that_does_not_resolve(tmp_path: Path) -> None:
    """.invalid never resolves (RFC 2606): the message names the host, not urllib3's object."""
    from simcluster.cluster import kubeconfig

    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump(kubeconfig("http://no-such-host.invalid:6443")))
    r = cli("diagnose", KC, str(kc), "--request-timeout", "5s")
    one_line(r, 3, "the host name no-such-host.invalid cannot be resolved")
    assert "object at 0x" not in r.stderr


@pytest.mark.parametrize("example_sim", ["kubeadm-healthy"], indirect=True)
def test_forbidden_list_is_one_line(example_sim: Cluster) -> None:
    example_sim.faults.deny.append(Deny("list", "daemonsets.apps"))
    one_line(cli("diagnose", KC, str(example_sim.kubeconfig)), 3, "listing DaemonSets: daemonsets.apps is forbidden")


@pytest.mark.parametrize("example_sim", ["kubeadm-healthy"], indirect=True)
def test_request_timeout(example_sim: Cluster) -> None:
    example_sim.faults.latency = 1.5
    one_line(cli("diagnose", KC, str(example_sim.kubeconfig), "--request-timeout", "1s"), 3, "did not answer within 1s")


@pytest.mark.parametrize("example_sim", ["kubeadm-healthy"], indirect=True)
def test_api_error_is_one_line(example_sim: Cluster) -> None:
    example_sim.faults.errors.append(ErrorRule("GET", r"/configmaps$", 500, "etcdserver: leader changed"))
    one_line(cli("diagnose", KC, str(example_sim.kubeconfig)), 3, "etcdserver: leader changed")


@pytest.mark.parametrize("example_sim", ["k3s-multinode-one-broken"], indirect=True)
def test_exec_forbidden_leaves_nodes_unchecked_not_the_cluster(example_sim: Cluster) -> None:
    example_sim.faults.deny.append(Deny("get", "pods/exec"))
    r = cli("diagnose", KC, str(example_sim.kubeconfig), "-o", "json")
    assert r.exit_code == 1
    unchecked = [f["message"] for f in findings(r) if f["code"] == "M900" and "could not be inspected" in f["message"]]
    assert len(unchecked) == 3
    assert all('exec forbidden: pods "' in m and 'cannot get resource "pods/exec"' in m for m in unchecked)
    # Only k3s-2, whose Multus pod is down, gets a helper (whose exec is refused too); none is left.
    assert len([q for q in example_sim.requests if q.verb == "create"]) == 1 and helper_pods(example_sim) == []


@pytest.mark.parametrize("example_sim", ["k3s-thin-doubled-prefix"], indirect=True)
def test_helper_pod_rejected_by_pod_security(example_sim: Cluster) -> None:
    ns = example_sim.store.get(example_sim.kind("namespaces"), "", "kube-system")
    ns["metadata"].setdefault("labels", {})["pod-security.kubernetes.io/enforce"] = "baseline"
    r = cli("diagnose", KC, str(example_sim.kubeconfig), "-o", "json")
    assert r.exit_code == 1
    text = json.dumps([f for f in findings(r) if f["code"] == "M900"])
    assert "Pod Security" in text and "--helper-namespace" in text
    assert helper_pods(example_sim) == []


@pytest.mark.parametrize("example_sim", ["k3s-thin-doubled-prefix"], indirect=True)
def test_helper_that_never_starts_times_out_and_is_removed(
    example_sim: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubectl_multus.adapters import live

    monkeypatch.setattr(live.Options, "__init__", _short_start(live.Options.__init__))
    example_sim.faults.helper_never_starts = True
    r = cli("diagnose", KC, str(example_sim.kubeconfig), "-o", "json")
    assert r.exit_code == 1
    text = json.dumps([f for f in findings(r) if f["code"] == "M900"])
    assert "did not start" in text and "ImagePullBackOff" in text and "--helper-image" in text
    assert helper_pods(example_sim) == []


def _short_start(init: Any) -> Any:
    def patched(self: Any, *args: Any, **kw: Any) -> None:
        init(self, *args, **kw)
        object.__setattr__(self, "start_timeout", 0.5)

    return patched


@pytest.mark.parametrize("example_sim", ["kubeadm-healthy"], indirect=True)
def test_dump_redacts_and_keeps_no_secret(example_sim: Cluster, tmp_path: Path) -> None:
    r = cli("dump", str(tmp_path / "d"), KC, str(example_sim.kubeconfig), "--redact")
    assert r.exit_code == 0, r.output
    text = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "d").rglob("*") if p.is_file())
    assert "worker-1" not in text and "node-1" in text
    assert cli("diagnose", "--from-dump", str(tmp_path / "d")).exit_code == 0


def test_multus_not_found_on_a_live_cluster(tmp_path: Path) -> None:
    sim = Cluster(tmp_path / "sim")
    sim.add(node("n1"))
    with sim:
        one_line(cli("diagnose", KC, str(sim.kubeconfig)), 3, "Multus not found")


def test_nads_and_the_pods_asking_for_them_are_read_live_and_round_trip_through_a_dump(tmp_path: Path) -> None:
    """With NetworkAttachmentDefinitions, one more list (all pods, keeping those that ask for
    networks); a NAD type no node has is M401 on every node, a network nobody defined M404."""
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "storage", "namespace": "default"},
        "spec": {"config": json.dumps({"cniVersion": "0.3.1", "type": "ipvlan", "master": "eth1"})},
    }
    app = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default", "annotations": {"k8s.v1.cni.cncf.io/networks": "nope"}},
        "spec": {"containers": [{"name": "app", "image": "docker.io/library/busybox:1.36.1"}]},
    }
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path) as sim:
        sim.add(nad)
        sim.add(app)
        sim.sync()
        sim.requests.clear()
        live = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        assert live.exit_code == 1, live.output
        lists = [(q.resource, q.namespace, q.code) for q in sim.requests if q.verb == "list"]
        assert ("pods", "", 200) in lists and len(lists) == 6  # nodes, ds, cms, multus pods, NADs, all pods
        by_code = {f["code"]: f for f in findings(live)}
        assert by_code["M401"]["field"] == "plugin ipvlan" and len(by_code["M401"]["nodes"]) == 3
        assert by_code["M401"]["expected"] == "/opt/cni/bin/ipvlan"
        assert by_code["M404"]["object"] == "Pod default/app" and by_code["M404"]["current"] == "default/nope"
        dumped = cli("dump", str(tmp_path / "dump"), KC, str(sim.kubeconfig))
        assert dumped.exit_code == 0, dumped.output
    workloads = yaml.safe_load((tmp_path / "dump" / "objects" / "workloads.yaml").read_text())["items"]
    assert [p["metadata"]["name"] for p in workloads] == ["app"]  # only the pods that ask for networks
    offline = cli("diagnose", "--from-dump", str(tmp_path / "dump"), "-o", "json")
    assert findings(offline) == findings(live)


def test_shim_socket_gone_under_a_running_daemon_is_found_through_its_mounts(tmp_path: Path) -> None:
    """Exec into the thick Multus pod lists /run/multus through its /host/run mount: a daemon that
    runs but whose socket is gone from the host (here: removed behind its back) is M304 on that node."""
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path) as sim:
        kind = sim.kind("daemonsets", "apps")
        ds = sim.store.get(kind, "kube-system", "kube-multus-ds")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/openshift/origin-multus-cni:4.16"
        sim.store.replace(kind, ds)
        sim.sync()
        assert all((sim.node_root(n) / "run/multus/multus.sock").exists() for n in ("control-plane", "worker-1"))
        (sim.node_root("worker-1") / "run/multus/multus.sock").unlink()
        r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        socket = [f for f in findings(r) if f["code"] == "M304"]
        assert r.exit_code == 1 and [f["nodes"] for f in socket] == [["worker-1"]], r.stdout
        assert helper_pods(sim) == [] and not [q for q in sim.requests if q.verb == "create"]
