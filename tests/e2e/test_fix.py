"""`fix`, `rollback` and `cleanup` against the simulated cluster: the repaired Multus comes up,
nothing else is touched, and every failure leaves the config as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from simcluster.admission import Deny
from simcluster.cluster import Cluster, ErrorRule
from tests.e2e.conftest import EXAMPLES, cli, helper_pods, sim_from
from tests.scenarios import installed_executable

KC = "--kubeconfig"
DAEMON_CONFIG = "var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/daemon-config.json"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def multus_pods(sim: Cluster) -> dict[str, dict[str, Any]]:
    return {
        p["spec"]["nodeName"]: p
        for p in sim.store.list(sim.kind("pods"), "kube-system")
        if (p["metadata"].get("labels") or {}).get("app") == "multus"
    }


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


def writes(sim: Cluster) -> list[str]:
    return [
        f"{q.verb} {q.resource} {q.name}"
        for q in sim.requests
        if q.verb in ("patch", "update")
        or (q.verb == "exec" and (q.query.get("command") or [""])[0] in ("dd", "mv", "cp"))
    ]


def test_the_motivating_case_is_fixed_once(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 1
        assert not ready(multus_pods(sim)["k3s-server"])
        r = cli("fix", KC, str(sim.kubeconfig), "--yes")
        assert r.exit_code == 0, r.stderr
        assert "fixed and verified" in r.stderr and "--cni-conf-dir=/host/etc/cni/net.d" in r.stdout
        assert ready(multus_pods(sim)["k3s-server"])
        assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 0
        sim.requests.clear()
        again = cli("fix", KC, str(sim.kubeconfig), "--yes")
        assert again.exit_code == 0 and again.stdout == "Nothing to fix.\n" and again.stderr == ""
        assert writes(sim) == []
        assert helper_pods(sim) == []


def test_node_file_fix_changes_only_that_node(tmp_path: Path, state_dir: Path) -> None:
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        plan = json.loads(cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--dry-run", "-o", "json").stdout)
        after = plan["targets"][0]["after"]
        original = (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes()
        others = {n: (sim.node_root(n) / DAEMON_CONFIG).read_bytes() for n in ("k3s-1", "k3s-3")}
        pods_before = {n: p["metadata"]["uid"] for n, p in multus_pods(sim).items()}
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes")
        assert r.exit_code == 0, r.stderr
        assert (sim.node_root("k3s-2") / DAEMON_CONFIG).read_text() == after  # byte for byte what the plan showed
        assert {n: (sim.node_root(n) / DAEMON_CONFIG).read_bytes() for n in others} == others
        pods_after = {n: p["metadata"]["uid"] for n, p in multus_pods(sim).items()}
        assert pods_after["k3s-1"] == pods_before["k3s-1"] and pods_after["k3s-3"] == pods_before["k3s-3"]
        assert pods_after["k3s-2"] != pods_before["k3s-2"] and ready(multus_pods(sim)["k3s-2"])
        on_node = list((sim.node_root("k3s-2") / DAEMON_CONFIG).parent.glob("daemon-config.json.kubectl-multus-*.bak"))
        assert len(on_node) == 1 and on_node[0].read_bytes() == original
        local = list(state_dir.rglob("original"))
        assert len(local) == 1 and local[0].read_bytes() == original
        assert helper_pods(sim) == []
        listing = cli("rollback", KC, str(sim.kubeconfig), "--list")
        assert "k3s-2" in listing.stdout
        back = cli("rollback", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes", "--timeout", "2s")
        assert back.exit_code == 0, back.stderr
        assert (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes() == original


def test_configmap_fix_restarts_every_multus_pod(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thick-configmap-host-paths", tmp_path / "sim") as sim:
        before = {n: p["metadata"]["uid"] for n, p in multus_pods(sim).items()}
        r = cli("fix", KC, str(sim.kubeconfig), "--yes")
        assert r.exit_code == 0, r.stderr
        assert "ConfigMap kube-system/" in r.stdout and "restart every Multus pod" in r.stdout
        after = {n: p["metadata"]["uid"] for n, p in multus_pods(sim).items()}
        assert set(after) == set(before) and not set(after.values()) & set(before.values())
        assert all(ready(p) for p in multus_pods(sim).values())
        assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 0


def test_node_only_fix_holds_back_cluster_wide_changes(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-server", "--yes")
        assert r.exit_code == 0 and "held back" in r.stdout and "run fix without --node" in r.stdout
        assert writes(sim) == []


def unchanged(sim: Cluster, r: Any, status: int, text: str) -> None:
    assert r.exit_code == status, r.output
    assert text in r.stderr, r.stderr
    assert writes(sim) == [] and helper_pods(sim) == []


def test_refused_without_a_terminal_or_yes(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        unchanged(sim, cli("fix", KC, str(sim.kubeconfig)), 3, "without a confirmation")


def test_refused_when_rbac_forbids_the_patch(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        sim.faults.deny.append(Deny("patch", "daemonsets.apps"))
        unchanged(sim, cli("fix", KC, str(sim.kubeconfig), "--yes"), 3, "not allowed to patch daemonsets.apps")


def test_refused_when_pod_security_rejects_the_writer(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        message = 'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "writer" must not set securityContext.privileged=true)'
        sim.faults.errors.append(ErrorRule("POST", r"/pods$", 403, message, body_contains='"privileged": true'))
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes")
        unchanged(sim, r, 3, "rejected by Pod Security")
        assert r.stderr.count("\n") == 1


def test_api_error_on_the_patch_changes_nothing(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        sim.faults.errors.append(ErrorRule("PATCH", r"/daemonsets/", 500, "etcdserver: request timed out"))
        ds = json.dumps(sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")["spec"])
        r = cli("fix", KC, str(sim.kubeconfig), "--yes")
        # The patch was sent, so it counts as a change to undo: exit 1, and the undo finds nothing to put back.
        assert r.exit_code == 1 and "etcdserver: request timed out" in r.stderr and "was not changed" in r.stderr
        assert json.dumps(sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")["spec"]) == ds


def test_pod_never_ready_rolls_back(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        original = (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes()
        sim.faults.never_ready = {"k3s-2"}
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes", "--timeout", "1s")
        assert r.exit_code == 1, r.stderr
        assert "not Ready within 1s" in r.stderr and "restored file" in r.stderr
        assert (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes() == original
        assert helper_pods(sim) == []


def test_exec_breaking_before_the_rename_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        original = (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes()
        sim.faults.exec_breaks_after, sim.faults.exec_breaks_on, sim.faults.exec_broken_ran = 0, "mv", False
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes")
        assert r.exit_code != 0 and "broke off" in r.stderr
        assert (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes() == original
        assert helper_pods(sim) == []


def test_rollback_that_cannot_write_says_where_the_original_is(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        sim.faults.exec_breaks_after, sim.faults.exec_breaks_on, sim.faults.exec_broken_ran = 0, "mv", True
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes", "--timeout", "2s")
        assert r.exit_code == 4, r.stderr
        assert "rollback failed" in r.stderr and "original kept in" in r.stderr
        assert r.stderr.splitlines()[-1].startswith("kubectl multus: error: ")
        assert helper_pods(sim) == []


def test_ctrl_c_while_waiting_restores_the_config(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        original = (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes()
        sim.faults.never_ready = {"k3s-2"}
        env = {**os.environ, "NO_COLOR": "1", "XDG_STATE_HOME": str(tmp_path / "state")}
        proc = subprocess.Popen(
            [installed_executable(), "fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes", "--timeout", "60s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes() == original:
                assert proc.poll() is None and time.monotonic() < deadline, "the fix never wrote"
                time.sleep(0.05)
            time.sleep(0.5)  # now waiting for a Ready that never comes
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 130, err
        assert (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes() == original
        assert helper_pods(sim) == []


def test_cleanup_removes_leftover_helper_pods(tmp_path: Path) -> None:
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path / "sim") as sim:
        from kubectl_multus.core.capture import helper_pod

        leftover = helper_pod("worker-1", "kube-system", "busybox:1.36.1", ["/etc/cni/net.d"], deadline=600)
        leftover["metadata"]["name"] = "kubectl-multus-worker-1-left"
        sim.add(leftover)
        assert helper_pods(sim) == ["kubectl-multus-worker-1-left"]
        r = cli("cleanup", KC, str(sim.kubeconfig))
        assert r.exit_code == 0 and "kube-system/kubectl-multus-worker-1-left" in r.stdout
        assert helper_pods(sim) == []


def test_empty_multus_conf_on_one_node_is_removed_and_rewritten(tmp_path: Path) -> None:
    conf = "var/lib/rancher/k3s/agent/etc/cni/net.d/00-multus.conf"
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        (sim.node_root("k3s-1") / conf).write_text("")  # truncated by a full disk, say
        sim.sync()
        r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        broken = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "M206"]
        assert [f["nodes"] for f in broken] == [["k3s-1"]]
        others = {n: (sim.node_root(n) / conf).read_bytes() for n in ("k3s-3",)}
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-1", "--yes")
        assert r.exit_code == 0, r.stderr
        written = json.loads((sim.node_root("k3s-1") / conf).read_text())  # the restarted daemon's own
        assert written["type"] == "multus-shim"
        assert {n: (sim.node_root(n) / conf).read_bytes() for n in others} == others
        backups = list((sim.node_root("k3s-1") / conf).parent.glob("00-multus.conf.kubectl-multus-*.bak"))
        assert len(backups) == 1 and backups[0].read_bytes() == b""
        diagnosis = json.loads(cli("diagnose", KC, str(sim.kubeconfig), "-o", "json").stdout)
        assert not [f for f in diagnosis["findings"] if f["code"] == "M206"]


def test_backups_belong_to_their_cluster_and_rollback_checks_the_target(tmp_path: Path, state_dir: Path) -> None:
    from kubectl_multus.adapters import statedir
    from kubectl_multus.core.findings import Target

    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "a") as a:
        assert cli("fix", KC, str(a.kubeconfig), "--node", "k3s-2", "--yes").exit_code == 0
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path / "b") as b:  # the same context name, "sim"
        r = cli("rollback", KC, str(b.kubeconfig), "--yes")
        assert r.exit_code == 3 and "no backup of sim@127.0.0.1:" in r.stderr
        server = f"http://127.0.0.1:{b.server.server_address[1]}"
        ghost = Target("NodeFile", node="ghost", path="/etc/cni/net.d/multus.d/daemon-config.json")
        statedir.save(statedir.cluster_key("sim", server), ghost, b"{}", base=state_dir / "kubectl-multus" / "backups")
        b.requests.clear()
        r = cli("rollback", KC, str(b.kubeconfig), "--yes")
        assert r.exit_code == 3 and "node ghost not found; nothing was changed" in r.stderr
        assert writes(b) == [] and helper_pods(b) == []


def test_exec_breaking_after_the_rename_is_rolled_back(tmp_path: Path) -> None:
    """The rename happened but its answer was lost: the change is known to rollback before it is sent."""
    with sim_from(EXAMPLES / "k3s-multinode-one-broken", tmp_path / "sim") as sim:
        original = (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes()
        sim.faults.exec_breaks_after, sim.faults.exec_breaks_on, sim.faults.exec_broken_ran = 0, "mv", True
        sim.faults.exec_breaks_times = 1  # the rollback's own rename works
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "k3s-2", "--yes", "--timeout", "2s")
        assert r.exit_code == 1, r.stderr
        assert "broke off" in r.stderr and "restored file" in r.stderr
        assert (sim.node_root("k3s-2") / DAEMON_CONFIG).read_bytes() == original
        assert helper_pods(sim) == []


def test_multus_conf_renamed_away_by_cilium_is_put_back(tmp_path: Path) -> None:
    """field-11 live: Cilium (in its own namespace, cni-exclusive on) renamed worker-1's 00-multus.conf."""
    conf = "etc/cni/net.d/00-multus.conf"
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path / "sim") as sim:
        sim.add(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cilium-config", "namespace": "cilium"},
                "data": {"cni-exclusive": "true"},
            }
        )
        labels = {"k8s-app": "cilium"}
        agent = {"name": "cilium-agent", "image": "docker.io/library/busybox:1.36.1", "command": ["sleep", "86400"]}
        sim.add(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "cilium", "namespace": "cilium"},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [agent]}},
                },
            }
        )
        original = (sim.node_root("worker-1") / conf).read_bytes()
        (sim.node_root("worker-1") / conf).rename(sim.node_root("worker-1") / f"{conf}.cilium_bak")
        sim.sync()
        sim.requests.clear()
        r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        found = {f["code"]: f for f in json.loads(r.stdout)["findings"]}
        assert found["M207"]["nodes"] == ["worker-1"] and found["M207"]["current"].endswith(".cilium_bak")
        assert found["M214"]["current"] == "true"  # read from the cilium namespace
        cm_lists = [q for q in sim.requests if q.verb == "list" and q.resource == "configmaps"]
        assert sorted(q.namespace for q in cm_lists) == ["cilium", "kube-system"]
        plan = json.loads(cli("fix", KC, str(sim.kubeconfig), "--node", "worker-1", "--dry-run", "-o", "json").stdout)
        assert [t["after"] for t in plan["targets"]] == [original.decode()]
        assert any("cni.exclusive=false" in m for m in plan["manual"])
        r = cli("fix", KC, str(sim.kubeconfig), "--node", "worker-1", "--yes")
        assert r.exit_code == 0, r.stderr
        assert json.loads((sim.node_root("worker-1") / conf).read_text())["type"] == "multus-shim"
        assert ready(multus_pods(sim)["worker-1"])
        again = json.loads(cli("diagnose", KC, str(sim.kubeconfig), "-o", "json").stdout)
        assert not [f for f in again["findings"] if f["code"] == "M207"]


def _edit_ds(sim: Cluster, edit: Any) -> None:
    """Change the Multus DaemonSet as its owner would (the DaemonSet controller rolls the pods)."""
    kind = sim.kind("daemonsets", "apps")
    ds = json.loads(json.dumps(sim.store.get(kind, "kube-system", "kube-multus-ds")))
    edit(ds["spec"]["template"]["spec"])
    sim.store.replace(kind, ds)
    sim.sync()


def test_oom_killed_burstable_multus_is_made_guaranteed(tmp_path: Path) -> None:
    """field-12 live: the upstream thick init container has requests only, so the pod is Burstable;
    once the kernel OOM-kills the daemon, fix gives the init container limits equal to its requests."""
    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path / "sim") as sim:
        sim.kubelet.oom_kill("worker-1", "kube-multus")
        r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        codes = {f["code"]: f for f in json.loads(r.stdout)["findings"]}
        assert r.exit_code == 1 and {"M302", "M303"} <= set(codes), r.stdout
        assert codes["M303"]["current"] == "Burstable" and codes["M302"]["nodes"] == ["worker-1"]
        sim.advance(11)  # back-off over: the daemon runs again, and the fix can be verified
        sim.requests.clear()
        r = cli("fix", KC, str(sim.kubeconfig), "--yes")
        assert r.exit_code == 0, r.stderr
        assert "ds.initContainer.install-multus-binary.resources.limits.memory: (not set) -> 15Mi" in r.stdout
        patches = [q for q in sim.requests if q.verb == "patch" and q.resource.startswith("daemonsets")]
        assert len(patches) == 1
        ds = sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")
        init = ds["spec"]["template"]["spec"]["initContainers"][0]
        assert init["resources"]["limits"] == {"cpu": "10m", "memory": "15Mi"}
        assert {p["status"]["qosClass"] for p in multus_pods(sim).values()} == {"Guaranteed"}
        assert all(ready(p) for p in multus_pods(sim).values())
        assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 0


def test_unprivileged_plugin_installer_on_selinux_nodes_is_made_privileged(tmp_path: Path) -> None:
    """field-17 live: RKE2's cni-plugins init container exits 0 after `non-writeable, skipping`;
    diagnose reads that completed init container's log tail, fix makes it privileged."""

    def add_installer(spec: dict[str, Any]) -> None:
        spec["initContainers"].append(
            {
                "name": "cni-plugins",
                "image": "rancher/hardened-cni-plugins:v1.9.1-build20260819",
                "volumeMounts": [{"name": "cnibin", "mountPath": "/host/opt/cni/bin"}],
            }
        )

    with sim_from(EXAMPLES / "kubeadm-healthy", tmp_path / "sim") as sim:
        sim.faults.selinux_enforcing = {"control-plane", "worker-1", "worker-2"}
        _edit_ds(sim, add_installer)
        assert all(ready(p) for p in multus_pods(sim).values())  # Multus itself runs: only the log tells
        sim.requests.clear()
        r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        codes = {f["code"]: f for f in json.loads(r.stdout)["findings"]}
        assert r.exit_code == 1 and "M305" in codes, r.stdout
        assert codes["M305"]["field"] == "container cni-plugins securityContext.privileged"
        logs = [q for q in sim.requests if q.verb == "log"]
        assert len(logs) == 2 * 3  # per node: kube-multus, and the completed cni-plugins (tail only)
        tails = {q.query.get("container", [""])[0]: q.query.get("tailLines", [""])[0] for q in logs}
        assert tails == {"kube-multus": "500", "cni-plugins": "50"}
        r = cli("fix", KC, str(sim.kubeconfig), "--yes")
        assert r.exit_code == 0, r.stderr
        ds = sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")
        installer = ds["spec"]["template"]["spec"]["initContainers"][1]
        assert installer["securityContext"] == {"privileged": True}
        assert all((sim.node_root(n) / "opt/cni/bin/macvlan").exists() for n in ("control-plane", "worker-1"))
        assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 0


def test_thick_image_under_the_thin_entrypoint_goes_back_to_the_thin_image(tmp_path: Path) -> None:
    """The -thick image has no /thin_entrypoint: runc's StartError names it, fix picks the thin image."""

    def thick_images(spec: dict[str, Any]) -> None:
        for c in spec["containers"] + spec.get("initContainers", []):
            c["image"] += "-thick"

    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path / "sim") as sim:
        _edit_ds(sim, thick_images)
        r = cli("diagnose", KC, str(sim.kubeconfig), "-o", "json")
        start = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "M307"]
        assert start and "no such file or directory" in start[0]["evidence"][0], r.stdout
        r = cli("fix", KC, str(sim.kubeconfig), "--yes")
        assert r.exit_code == 0, r.stderr
        ds = sim.store.get(sim.kind("daemonsets", "apps"), "kube-system", "kube-multus-ds")
        spec = ds["spec"]["template"]["spec"]
        assert not [c["image"] for c in spec["containers"] + spec.get("initContainers", []) if "thick" in c["image"]]
        assert ready(multus_pods(sim)["k3s-server"])
        assert cli("diagnose", KC, str(sim.kubeconfig)).exit_code == 0
