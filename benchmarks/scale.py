#!/usr/bin/env python3
"""How `kubectl multus diagnose` scales with the number of nodes, on simulated clusters.

Each cluster is `examples/kubeadm-healthy` (3 nodes) plus N-3 extra worker nodes, built in this
process with `simcluster` on a stopped clock, served on 127.0.0.1 with a fixed latency added to
every API request. The CLI runs as a subprocess (the installed `kubectl-multus`), once per
`--parallel` value; the simulated API server's request log gives the number of list requests
(which must not grow with nodes) and of per-node requests, by verb.

Upstream Multus images are distroless in the simulation: the first node costs one failed exec,
then every node is read through a helper pod (create, get until Running, exec, delete).
`--image-with-tools` switches the DaemonSet to an OpenShift image that has tar and find, so every
node is read by exec into its Multus pod and no helper pod is made.

This is a script, not a test: it reports figures and asserts nothing about time. It exits
non-zero only when a run fails (exit status, node count, helper pods left behind).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from simcluster.cluster import Cluster, node_object  # noqa: E402
from simcluster.process import Clock  # noqa: E402
from tests.sim.observed import make_node  # noqa: E402

EXAMPLE = ROOT / "examples" / "kubeadm-healthy"
BASE_NODES = 3  # control-plane, worker-1, worker-2
START = 1_796_000_000.0  # the virtual clock's epoch, as the e2e tests use
TOOLS_IMAGE = "quay.io/openshift/origin-multus-cni:4.16"  # RHEL-based: has sh, tar and find
VERBS = ("exec", "create", "get", "delete", "log")
# Once per run, whatever the number of nodes. The simulator records a request for a resource it
# does not serve (a 404 before routing: NetworkAttachmentDefinitions without their CRD, HelmCharts)
# under the verb "discovery"; the CLI sent it as a list.
FIXED = ("list", "discovery")


def source_version() -> str:
    """The commit of the plugin's source tree, and whether kubectl_multus/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "kubectl_multus"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes in kubectl_multus/" if dirty else head


class TimedLock:
    """Wraps the cluster's RLock and adds up the real time it is held (outermost holds only):
    the simulated API server and kubelet do all their work under it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.held = 0.0
        self._local = threading.local()
        self._count = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got: bool = self.inner.acquire(blocking, timeout)
        if got:
            depth = getattr(self._local, "depth", 0)
            if depth == 0:
                self._local.since = time.perf_counter()
            self._local.depth = depth + 1
        return got

    def release(self) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            spent = time.perf_counter() - self._local.since
            with self._count:
                self.held += spent
        self.inner.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


class ServerProfiles:
    """A cProfile of every request the simulated API server handles (one profile per request, as
    cProfile follows one thread), merged on demand."""

    def __init__(self) -> None:
        from simcluster import server

        self.profiles: list[cProfile.Profile] = []
        lock = threading.Lock()
        handle = server.Handler._handle

        def profiled(handler: Any, method: str) -> None:
            prof = cProfile.Profile()
            prof.enable()
            try:
                handle(handler, method)
            finally:
                prof.disable()
                with lock:
                    self.profiles.append(prof)

        server.Handler._handle = profiled  # type: ignore[method-assign]

    def top(self, lines: int = 30) -> str:
        if not self.profiles:
            return "no requests\n"
        out = io.StringIO()
        stats = pstats.Stats(self.profiles[0], stream=out)
        for prof in self.profiles[1:]:
            stats.add(prof)
        stats.sort_stats("cumulative").print_stats(lines)
        return out.getvalue()


@dataclass
class Build:
    nodes: int
    load_s: float = 0.0
    grow_s: float = 0.0
    start_s: float = 0.0
    sync_s: float = 0.0
    profile: str = ""


@dataclass
class Run:
    nodes: int
    parallel: int
    wall_s: float
    exit_code: int
    nodes_seen: int
    verbs: Counter[str] = field(default_factory=Counter)
    lock_s: float = 0.0
    sim_cpu_s: float = 0.0
    cli_cpu_s: float = 0.0
    lists_404: int = 0
    helpers_left: int = 0
    error: str = ""

    @property
    def fixed(self) -> int:
        return sum(self.verbs[v] for v in FIXED)

    def per_node(self, verb: str | None = None) -> float:
        if verb is not None:
            return self.verbs[verb] / self.nodes
        return sum(n for v, n in self.verbs.items() if v not in FIXED) / self.nodes


def build(n: int, tools: bool, profile: bool, workloads: int = 0) -> tuple[Cluster, Build]:
    """The cluster of `n` nodes, started and synced, with the time each step took."""
    timing = Build(n)
    prof = cProfile.Profile() if profile else None
    if prof is not None:
        prof.enable()
    t0 = time.perf_counter()
    sim = Cluster(clock=Clock(start=START))  # speed 0: time moves only when told
    sim.load_dump(EXAMPLE)
    if tools:
        kind = sim.kind("daemonsets", "apps")
        ds = sim.store.get(kind, "kube-system", "kube-multus-ds")
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = TOOLS_IMAGE
        sim.store.replace(kind, ds)
    t1 = time.perf_counter()
    for i in range(n - BASE_NODES):  # as grow() in tests/e2e/test_live.py
        sim.add(node_object(f"extra-{i}"))
        make_node(sim.node_root(f"extra-{i}"), "kubeadm", "/etc/cni/net.d", primary_plugins=True)
    if workloads:
        add_workloads(sim, workloads)
    t2 = time.perf_counter()
    sim.start()  # the first full sync (DaemonSet controller creates n pods) and the server
    t3 = time.perf_counter()
    sim.sync()
    t4 = time.perf_counter()
    if prof is not None:
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
        timing.profile = out.getvalue()
    timing.load_s, timing.grow_s, timing.start_s, timing.sync_s = t1 - t0, t2 - t1, t3 - t2, t4 - t3
    return sim, timing


def add_workloads(sim: Cluster, per_node: int) -> None:
    """A NetworkAttachmentDefinition (its CRD comes with it) and `per_node` pods on every node that
    ask for it and got it (network-status lists it): the CLI then lists all pods once, and keeps
    only these."""
    config = {"cniVersion": "0.3.1", "type": "bridge", "bridge": "br1", "ipam": {"type": "host-local"}}
    sim.add(
        {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "br1", "namespace": "default"},
            "spec": {"config": json.dumps(config)},
        }
    )
    status = json.dumps(
        [{"name": "cbr0", "interface": "eth0", "default": True}, {"name": "default/br1", "interface": "net1"}]
    )
    for node in [n["metadata"]["name"] for n in sim.store.list(sim.kind("nodes"))]:
        for i in range(per_node):
            annotations = {"k8s.v1.cni.cncf.io/networks": "br1", "k8s.v1.cni.cncf.io/network-status": status}
            sim.add(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"app-{node}-{i}", "namespace": "default", "annotations": annotations},
                    "spec": {
                        "nodeName": node,
                        "containers": [
                            {"name": "app", "image": "docker.io/library/busybox:1.36.1", "command": ["sleep", "1d"]}
                        ],
                    },
                }
            )


def helper_pods(sim: Cluster) -> int:
    return sum(
        1
        for p in sim.store.list(sim.kind("pods"))
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "kubectl-multus"
    )


def diagnose(sim: Cluster, exe: Path, n: int, parallel: int, latency: float, timeout: float) -> Run:
    assert sim.kubeconfig is not None
    sim.sync()
    sim.requests.clear()
    lock = TimedLock(sim.lock)
    sim.lock = lock  # type: ignore[assignment]
    sim.faults.latency = latency
    argv = [str(exe), "diagnose", "--kubeconfig", str(sim.kubeconfig), "--parallel", str(parallel), "-o", "json"]
    cpu0 = time.process_time()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:  # the child is killed; report it as a failed run
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        done = subprocess.CompletedProcess(argv, -9, out, f"timed out after {timeout:g}s")
    finally:
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sim.faults.latency = 0.0
        sim.lock = lock.inner
    run = Run(n, parallel, wall, done.returncode, 0, Counter(r.verb for r in sim.requests), lock.held, cpu)
    run.lists_404 = sum(1 for r in sim.requests if r.verb in FIXED and r.code == 404)
    run.cli_cpu_s = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    run.helpers_left = helper_pods(sim)
    try:
        data = json.loads(done.stdout)
        run.nodes_seen = sum(len(i.get("nodes") or []) for i in data.get("installs") or [])
        unchecked = [
            f
            for f in data.get("findings") or []
            if f.get("severity") in ("warning", "error") or f.get("code") == "M900"
        ]
        if unchecked:
            run.error = f"{len(unchecked)} warning/error findings, first: {unchecked[0].get('message', '')[:200]}"
    except ValueError:
        run.error = f"stdout is not JSON: {done.stdout[:200]!r}"
    if done.returncode != 0:
        run.error = f"exit {done.returncode}: {done.stderr.strip()[:300]} {run.error}".strip()
    elif run.nodes_seen != n:
        run.error = f"JSON has {run.nodes_seen} nodes, expected {n}"
    elif run.helpers_left:
        run.error = f"{run.helpers_left} helper pods left behind"
    return run


def ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers: {text}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=ints, default=[10, 100, 500], help="cluster sizes (default 10,100,500)")
    parser.add_argument("--parallel", type=ints, default=[1, 8], help="--parallel values to run with (default 1,8)")
    parser.add_argument(
        "--latency-ms", type=float, default=5.0, help="real latency added to every API request (default 5)"
    )
    parser.add_argument(
        "--image-with-tools",
        action="store_true",
        help=f"run Multus as {TOOLS_IMAGE} (exec into the Multus pod, no helper pods)",
    )
    parser.add_argument(
        "--exe", type=Path, default=None, help="the kubectl-multus to run (default: the one next to this Python)"
    )
    parser.add_argument(
        "--workload-pods",
        type=int,
        default=0,
        help="add a NetworkAttachmentDefinition and this many pods per node that use it (default 0: none)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on one CLI run after this (s)")
    parser.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="set TCP_NODELAY on the simulated API server's sockets (it writes headers and body apart, "
        "so without it some keep-alive answers wait ~40 ms for a delayed ACK; a real API server sets it)",
    )
    parser.add_argument(
        "--profile-build", action="store_true", help="cProfile building and syncing each cluster; print the top"
    )
    parser.add_argument(
        "--profile-server",
        action="store_true",
        help="cProfile every request the simulated API server handles during each CLI run; print the top "
        "(slows the server down: the timings of such a run are not comparable)",
    )
    args = parser.parse_args(argv)
    if min(args.nodes) < BASE_NODES:
        parser.error(f"--nodes: the example already has {BASE_NODES} nodes")
    exe: Path = args.exe or Path(sys.executable).parent / "kubectl-multus"
    if not exe.exists():
        parser.error(f"{exe}: not found (pass --exe)")
    latency = args.latency_ms / 1000.0  # cluster.faults.latency is in seconds
    server_profiles = ServerProfiles() if args.profile_server else None
    if args.tcp_nodelay:
        from simcluster import server

        server.Handler.disable_nagle_algorithm = True  # socketserver.StreamRequestHandler's own switch

    mode = f"exec into Multus ({TOOLS_IMAGE})" if args.image_with_tools else "helper pods (distroless Multus)"
    print(f"# diagnose at scale ({time.strftime('%Y-%m-%d')})")
    print()
    print(
        f"- machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; plugin `{exe}` (source {source_version()})"
    )
    print(f"- cluster: {EXAMPLE.relative_to(ROOT)} + extra kubeadm workers; node files read by {mode}")
    nodelay = "TCP_NODELAY forced on" if args.tcp_nodelay else "simcluster's own socket settings"
    print(f"- {args.latency_ms:g} ms added to every API request; simulated API server in this process ({nodelay})")
    print()
    builds: list[Build] = []
    runs: list[Run] = []
    for n in args.nodes:
        sim, timing = build(n, args.image_with_tools, args.profile_build, args.workload_pods)
        builds.append(timing)
        print(
            f"built {n} nodes: load {timing.load_s:.2f}s, add nodes {timing.grow_s:.2f}s, "
            f"start {timing.start_s:.2f}s, sync {timing.sync_s:.2f}s",
            file=sys.stderr,
            flush=True,
        )
        if timing.profile:
            print(
                f"\n<details><summary>cProfile of building {n} nodes</summary>\n\n```\n{timing.profile}```\n</details>\n"
            )
        try:
            for p in args.parallel:
                if server_profiles is not None:
                    server_profiles.profiles.clear()
                run = diagnose(sim, exe, n, p, latency, args.timeout)
                runs.append(run)
                if server_profiles is not None:
                    print(
                        f"\n<details><summary>cProfile of the simulated API server, {n} nodes, --parallel {p}</summary>"
                        f"\n\n```\n{server_profiles.top()}```\n</details>\n"
                    )
                print(
                    f"diagnose {n} nodes --parallel {p}: {run.wall_s:.2f}s exit {run.exit_code} {run.error}".rstrip(),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            sim.stop()

    print("## building the simulated clusters (not part of the CLI's time)")
    print()
    print("| nodes | load example s | add nodes s | start (first sync + server) s | sync s |")
    print("|---:|---:|---:|---:|---:|")
    for b in builds:
        print(f"| {b.nodes} | {b.load_s:.2f} | {b.grow_s:.2f} | {b.start_s:.2f} | {b.sync_s:.2f} |")
    print()
    print("## diagnose -o json")
    print()
    print(
        "| nodes | parallel | wall s | wall ÷ (nodes/parallel) ms | list requests (404) | per-node requests "
        "| exec | create | get | delete | log | CLI CPU s | sim under lock s | sim CPU s | wall − sim lock s | ok |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        unit = r.wall_s / (r.nodes / r.parallel) * 1000.0
        per = " | ".join(f"{r.per_node(v):.2f}" for v in VERBS)
        print(
            f"| {r.nodes} | {r.parallel} | {r.wall_s:.2f} | {unit:.1f} | {r.fixed} ({r.lists_404}) "
            f"| {r.per_node():.2f} | {per} | {r.cli_cpu_s:.2f} | {r.lock_s:.2f} | {r.sim_cpu_s:.2f} "
            f"| {r.wall_s - r.lock_s:.2f} | {r.error or 'yes'} |"
        )
    other = sorted(set().union(*(r.verbs for r in runs)) - set(VERBS) - set(FIXED)) if runs else []
    if other:
        print()
        print(f"Other verbs seen (counted in per-node requests): {', '.join(other)}")
    print()
    print(
        "list requests = lists of the whole cluster or namespace, once per run (404: kind not installed here). "
        "per-node requests = every other request, divided by nodes. "
        "CLI CPU = user+system CPU time of the kubectl-multus process. "
        "sim under lock = real time the simulated API server and kubelet held the cluster lock "
        "(every request is served under it, one at a time, so with --parallel > 1 this is a floor for the wall time); "
        "sim CPU = CPU time of this process (the simulator) during the run. "
        "wall − sim lock is a rough view of the time the CLI would take against an API server that answers at once "
        "(plus the added latency)."
    )
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
