"""deploy/rbac.yaml: a valid ClusterRole and binding holding what the tool uses, and no more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.conftest import ROOT

RBAC = ROOT / "deploy" / "rbac.yaml"
# (apiGroup, resource, verb): what the commands call, and fix's changes and reads.
EXPECTED = {
    ("", "nodes", "get"),
    ("", "nodes", "list"),
    ("apps", "daemonsets", "get"),
    ("apps", "daemonsets", "list"),
    ("apps", "daemonsets", "patch"),
    ("", "configmaps", "get"),
    ("", "configmaps", "list"),
    ("", "configmaps", "patch"),
    ("", "pods", "get"),
    ("", "pods", "list"),
    ("", "pods", "create"),
    ("", "pods", "delete"),
    ("", "pods/log", "get"),
    ("", "pods/exec", "get"),
    ("", "pods/exec", "create"),
    ("k8s.cni.cncf.io", "network-attachment-definitions", "list"),
    ("helm.cattle.io", "helmcharts", "get"),
    ("helm.cattle.io", "helmcharts", "list"),
    ("helm.cattle.io", "helmchartconfigs", "get"),
    ("helm.cattle.io", "helmchartconfigs", "list"),
    ("helm.cattle.io", "helmchartconfigs", "create"),
    ("helm.cattle.io", "helmchartconfigs", "patch"),
}
# Every authenticated user may ask what they may do (the built-in system:basic-user ClusterRole).
IMPLICIT = {("authorization.k8s.io", "selfsubjectaccessreviews", "create")}


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def granted() -> set[tuple[str, str, str]]:
    (role,) = [d for d in documents() if d["kind"] == "ClusterRole"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_cluster_role_and_binding_for_one_placeholder_subject() -> None:
    role, binding = documents()
    assert (role["kind"], binding["kind"]) == ("ClusterRole", "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    (subject,) = binding["subjects"]
    assert subject["name"] == "REPLACE-ME" and subject["kind"] in ("User", "Group", "ServiceAccount")


def test_grants_exactly_what_the_tool_needs() -> None:
    assert granted() == EXPECTED
    assert not any("*" in part for rule in granted() for part in rule)


def test_manifests_match_the_kubernetes_schema() -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="a test dependency: pip install -e '.[test]'"
    )
    for doc in documents():
        kubernetes_validate.validate(doc, "1.31", strict=True)


def recording(sim: Any) -> list[tuple[str, str, str]]:
    """Make `sim` a 1.35 cluster (exec authorised as get and create) that records each RBAC check."""
    sim.version["minor"] = "35"
    seen: list[tuple[str, str, str]] = []
    check = sim.check

    def record(method: str, path: str, verb: str, kind: Any, sub: str, *rest: Any) -> None:
        if kind is not None:
            seen.append((kind.group, kind.plural + (f"/{sub}" if sub else ""), verb))
        check(method, path, verb, kind, sub, *rest)

    sim.check = record
    return seen


def run(tmp_path: Path, *args: str) -> Any:
    from typer.testing import CliRunner

    from kubectl_multus.cli import app

    env = {"NO_COLOR": "1", "XDG_STATE_HOME": str(tmp_path / "state")}  # fix's backups stay in tmp_path
    return CliRunner().invoke(app, list(args), prog_name="kubectl multus", env=env)


def test_reading_commands_stay_within_the_role(tmp_path: Path) -> None:
    """diagnose, dump and cleanup on a cluster whose Multus crash-loops (so the node is
    read through a helper pod): every request they make is granted by deploy/rbac.yaml."""
    from tests.e2e.conftest import EXAMPLES, sim_from

    with sim_from(EXAMPLES / "k3s-thin-doubled-prefix", tmp_path) as sim:
        seen = recording(sim)
        for args in (["diagnose"], ["dump", str(tmp_path / "dump")], ["cleanup"]):
            result = run(tmp_path, *args, "--kubeconfig", str(sim.kubeconfig))
            assert result.exit_code in (0, 1), (args, result.output)
    used = set(seen)
    assert {("", "pods", "create"), ("", "pods/exec", "create"), ("", "pods/log", "get")} <= used  # the paths ran
    assert used - IMPLICIT <= granted(), sorted(used - IMPLICIT - granted())


@pytest.mark.parametrize(
    "example",
    ["k3s-thin-doubled-prefix", "k3s-thick-configmap-host-paths", "k3s-thick-host-file-daemon-config"],
    ids=["daemonset", "configmap", "node-file"],
)
def test_fix_stays_within_the_role(example: str, tmp_path: Path) -> None:
    from tests.e2e.conftest import EXAMPLES, sim_from

    with sim_from(EXAMPLES / example, tmp_path) as sim:
        seen = recording(sim)
        result = run(tmp_path, "fix", "--yes", "--kubeconfig", str(sim.kubeconfig))
        assert result.exit_code == 0, result.output
    used = set(seen)
    assert used - IMPLICIT <= granted(), sorted(used - IMPLICIT - granted())
