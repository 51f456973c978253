"""The CLI against the simulated cluster: the real kubernetes client over HTTP and WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kubectl_multus.cli import app
from simcluster.cluster import Cluster
from simcluster.process import Clock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
START = 1_796_000_000.0
runner = CliRunner()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args), prog_name="kubectl multus", env={"NO_COLOR": "1"})


def findings(result: Any) -> list[dict[str, Any]]:
    """The findings of a `-o json` diagnosis, as comparable data."""
    data = json.loads(result.stdout)
    return sorted(data["findings"], key=lambda f: json.dumps(f, sort_keys=True))


def sim_from(path: Path, tmp_path: Path) -> Cluster:
    sim = Cluster(tmp_path / "sim", clock=Clock(start=START))
    sim.load_dump(path)
    return sim


@pytest.fixture
def example_sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    with sim_from(EXAMPLES / request.param, tmp_path) as sim:
        yield sim


def helper_pods(sim: Cluster) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in sim.store.list(sim.kind("pods"))
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "kubectl-multus"
    ]
