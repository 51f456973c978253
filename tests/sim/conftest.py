"""A simulated cluster per test, and real `kubernetes` clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simcluster.cluster import Cluster, node_object
from simcluster.process import Clock

kubernetes = pytest.importorskip("kubernetes", reason="the kubernetes client is a dependency: pip install -e '.[test]'")


def node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return node_object(name, labels, taints)


def sleeper_ds(name: str = "sleeper", namespace: str = "kube-system") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox:1.36",
                            "command": ["sleep", "100000"],
                            "volumeMounts": [{"name": "cni", "mountPath": "/host/etc/cni/net.d"}],
                        }
                    ],
                    "volumes": [{"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}}],
                },
            },
        },
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    sim = Cluster(tmp_path / "sim", clock=Clock(start=1_796_000_000.0))
    for name in ("node-a", "node-b"):
        sim.add(node(name))
    sim.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "kube-system", "labels": {"app": "multus"}},
            "data": {"daemon-config.json": '{"a": 1}'},
        }
    )
    with sim:
        yield sim


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    from kubernetes import config

    assert cluster.kubeconfig is not None
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig), persist_config=False)
    yield api_client
    api_client.close()


@pytest.fixture
def core(client: Any) -> Any:
    from kubernetes import client as k

    return k.CoreV1Api(client)


@pytest.fixture
def apps(client: Any) -> Any:
    from kubernetes import client as k

    return k.AppsV1Api(client)
