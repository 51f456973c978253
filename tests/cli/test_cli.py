"""The command line: wiring, output formats and exit statuses, on the bundled examples."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kubectl_multus.cli import app
from kubectl_multus.errors import ExitStatus
from tests.scenarios import REPO, installed_executable

EXAMPLES = REPO / "examples"
MOTIVATING = str(EXAMPLES / "k3s-thin-doubled-prefix")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), prog_name="kubectl multus", env={"NO_COLOR": "1"})


# example -> (exit status, finding codes at warning or error)
EXPECTED = {
    "k3s-thin-doubled-prefix": (1, {"M103", "M105", "M201"}),
    "k3s-thick-configmap-host-paths": (1, {"M102", "M201"}),
    "k3s-thick-host-file-daemon-config": (1, {"M102", "M201"}),
    "k3s-upstream-thin-unchanged": (1, {"M105", "M107", "M108", "M201"}),
    "kubeadm-healthy": (0, set()),
    "k3s-multinode-one-broken": (1, {"M102", "M201"}),
}


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == set(EXPECTED)


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_diagnose_examples(example):
    r = run("diagnose", "--from-dump", str(EXAMPLES / example), "-o", "json")
    status, codes = EXPECTED[example]
    assert r.exit_code == status, r.output
    data = json.loads(r.stdout)
    assert data["exitCode"] == status
    assert {f["code"] for f in data["findings"] if f["severity"] != "info"} == codes


def test_motivating_example_names_flags_world_and_right_value():
    r = run("diagnose", "--from-dump", MOTIVATING)
    assert r.exit_code == ExitStatus.PROBLEMS
    out = r.stdout
    assert "thin (/thin_entrypoint)" in out
    for flag in ("--cni-conf-dir", "--multus-autoconfig-dir", "--multus-kubeconfig-file-host"):
        assert f"arg {flag}" in out
    assert "is a path inside the container, but it holds a host path with a prefix applied twice" in out
    assert "expected:  /host/etc/cni/net.d" in out
    assert "expected:  /var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/multus.kubeconfig" in out
    assert (
        "cni-conf-dir is not found: stat /host/var/lib/rancher/k3s/agent/var/lib/rancher/k3s/agent/etc/cni/net.d" in out
    )


def test_json_schema_of_a_finding():
    data = json.loads(run("diagnose", "--from-dump", MOTIVATING, "-o", "json").stdout)
    assert data["apiVersion"] == "kubectl-multus/v1" and data["kind"] == "Diagnosis"
    assert data["status"] == "problems"
    (install,) = data["installs"]
    assert install["mode"] == "thin" and install["namespace"] == "kube-system"
    assert install["nodes"][0]["distribution"] == "k3s"
    f = next(f for f in data["findings"] if f["field"].endswith("--cni-conf-dir"))
    assert set(f) == {
        "code",
        "severity",
        "title",
        "message",
        "nodes",
        "object",
        "field",
        "current",
        "expected",
        "evidence",
        "remediation",
        "changes",
    }
    assert f["changes"][0] == {
        "target": {"kind": "DaemonSet", "namespace": "kube-system", "name": "kube-multus-ds"},
        "key": "ds.arg.--cni-conf-dir",
        "current": f["current"],
        "value": "/host/etc/cni/net.d",
        "container": "kube-multus",
    }


def test_yaml_output_matches_json():
    as_json = json.loads(run("diagnose", "--from-dump", MOTIVATING, "-o", "json").stdout)
    as_yaml = yaml.safe_load(run("diagnose", "--from-dump", MOTIVATING, "-o", "yaml").stdout)
    assert as_json == as_yaml


def test_show_paths_lists_each_setting_with_world_and_host_path():
    r = run("show-paths", "--from-dump", MOTIVATING, "-o", "json")
    assert r.exit_code == ExitStatus.PROBLEMS
    rows = {p["setting"]: p for p in json.loads(r.stdout)["installs"][0]["nodes"][0]["paths"]}
    assert rows["--cni-conf-dir"]["world"] == "container"
    assert rows["--cni-conf-dir"]["resolvesTo"] == "container only (under no mount)"
    assert rows["--cni-conf-dir"]["expected"] == "/host/etc/cni/net.d"
    assert rows["--cni-conf-dir"]["ok"] is False
    assert rows["--cni-bin-dir"]["ok"] is True
    assert rows["--cni-bin-dir"]["hostPath"] == "/var/lib/rancher/k3s/data/cni"
    assert rows["--cni-bin-dir"]["exists"] is True
    assert rows["--multus-kubeconfig-file-host"]["world"] == "host"
    assert rows["--multus-kubeconfig-file-host"]["exists"] is False
    text = run("show-paths", "--from-dump", MOTIVATING).stdout
    assert "SETTING" in text and "WRONG" in text


def test_show_paths_groups_identical_nodes():
    text = run("show-paths", "--from-dump", str(EXAMPLES / "kubeadm-healthy")).stdout
    assert "on all nodes" in text and "WRONG" not in text


def test_fix_dry_run_shows_the_diff():
    r = run("fix", "--dry-run", "--from-dump", MOTIVATING)
    assert r.exit_code == ExitStatus.PROBLEMS
    assert "-        - --cni-conf-dir=/host/var/lib/rancher/k3s/agent/var/lib" in r.stdout
    assert "+        - --cni-conf-dir=/host/etc/cni/net.d" in r.stdout
    assert "rolling update of DaemonSet kube-system/kube-multus-ds" in r.stdout


def test_fix_dry_run_on_a_healthy_cluster_has_nothing_to_do():
    r = run("fix", "--dry-run", "--from-dump", str(EXAMPLES / "kubeadm-healthy"))
    assert r.exit_code == ExitStatus.OK and r.stdout == "Nothing to fix.\n"


def test_fix_for_one_node_changes_only_that_nodes_file():
    r = run(
        "fix", "--dry-run", "--node", "k3s-2", "--from-dump", str(EXAMPLES / "k3s-multinode-one-broken"), "-o", "json"
    )
    data = json.loads(r.stdout)
    assert [t["target"] for t in data["targets"]] == [
        {
            "kind": "NodeFile",
            "node": "k3s-2",
            "path": "/var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/daemon-config.json",
        }
    ]
    keys = {c["key"]: c["value"] for c in data["targets"][0]["changes"]}
    assert keys == {
        "daemon_config.cniConfigDir": "/host/etc/cni/net.d",
        "daemon_config.multusAutoconfigDir": "/host/etc/cni/net.d",
    }
    assert json.loads(data["targets"][0]["after"])["cniConfigDir"] == "/host/etc/cni/net.d"


def test_multinode_diagnose_names_only_the_broken_node():
    data = json.loads(run("diagnose", "--from-dump", str(EXAMPLES / "k3s-multinode-one-broken"), "-o", "json").stdout)
    nodes = {n for f in data["findings"] if f["severity"] != "info" for n in f["nodes"]}
    assert nodes == {"k3s-2"}


def test_fix_for_one_node_holds_back_cluster_wide_changes():
    r = run("fix", "--dry-run", "--node", "k3s-server", "--from-dump", MOTIVATING)
    assert "held back (cluster-wide" in r.stdout and "ds.arg.--cni-conf-dir=/host/etc/cni/net.d" in r.stdout
    assert r.exit_code == ExitStatus.PROBLEMS  # held back is still a change: the node is not fine as it is


def test_fix_without_dry_run_on_a_dump_is_refused():
    r = run("fix", "--from-dump", MOTIVATING)
    assert r.exit_code == ExitStatus.CANNOT_CHECK
    assert r.stderr.startswith("kubectl multus: error: ") and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diagnose", "--from-dump", "/nonexistent/dump"], "not a directory"),
        (["diagnose", "--kubeconfig", "/nonexistent/kubeconfig"], "no kubeconfig found"),
        (["diagnose", "--from-dump", MOTIVATING, "-n", "multus"], "Multus not found"),
        (["diagnose", "--from-dump", MOTIVATING, "--node", "nope"], "node nope not found"),
        (["show-paths", "--from-dump", MOTIVATING, "--node", "nope"], "node nope not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(args, message):
    r = run(*args)
    assert r.exit_code == ExitStatus.CANNOT_CHECK, r.output
    assert r.stdout == ""
    assert message in r.stderr and r.stderr.count("\n") == 1


def test_invalid_yaml_in_a_dump(tmp_path):
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "broken.yaml").write_text("kind: DaemonSet\n  bad: [indent\n")
    r = run("diagnose", "--from-dump", str(tmp_path))
    assert r.exit_code == ExitStatus.CANNOT_CHECK and "invalid YAML" in r.stderr


def test_no_multus_in_a_dump(tmp_path):
    shutil.copytree(EXAMPLES / "kubeadm-healthy", tmp_path / "d")
    (tmp_path / "d" / "objects" / "daemonsets.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    r = run("diagnose", "--from-dump", str(tmp_path / "d"))
    assert r.exit_code == ExitStatus.CANNOT_CHECK and "Multus not found" in r.stderr


def test_invalid_daemon_config_json_is_a_finding(tmp_path):
    d = tmp_path / "d"
    shutil.copytree(EXAMPLES / "kubeadm-healthy", d)
    cms = yaml.safe_load((d / "objects" / "configmaps.yaml").read_text())
    cms["items"][0]["data"]["daemon-config.json"] = '{"chrootDir": "/hostroot",'
    (d / "objects" / "configmaps.yaml").write_text(yaml.safe_dump(cms))
    r = run("diagnose", "--from-dump", str(d), "-o", "json")
    assert r.exit_code == ExitStatus.PROBLEMS
    f = next(f for f in json.loads(r.stdout)["findings"] if f["code"] == "M003")
    assert "invalid JSON" in f["message"]


def test_two_installs_are_a_finding(tmp_path):
    d = tmp_path / "d"
    shutil.copytree(EXAMPLES / "kubeadm-healthy", d)
    dss = yaml.safe_load((d / "objects" / "daemonsets.yaml").read_text())
    second = json.loads(json.dumps(dss["items"][0]))
    second["metadata"]["namespace"] = "multus"
    dss["items"].append(second)
    (d / "objects" / "daemonsets.yaml").write_text(yaml.safe_dump(dss))
    r = run("diagnose", "--from-dump", str(d), "-o", "json")
    assert r.exit_code == ExitStatus.PROBLEMS
    assert "M001" in {f["code"] for f in json.loads(r.stdout)["findings"]}
    assert run("diagnose", "--from-dump", str(d), "-n", "kube-system").exit_code == ExitStatus.OK


def test_flags_before_and_after_the_command():
    a = run("--debug", "diagnose", "--from-dump", MOTIVATING, "-o", "json")
    b = run("diagnose", "-o", "json", "--from-dump", MOTIVATING, "--debug")
    c = run("--from-dump", MOTIVATING, "-o", "json", "--node", "k3s-server", "diagnose")
    assert a.exit_code == b.exit_code == c.exit_code == ExitStatus.PROBLEMS
    assert a.stdout == b.stdout == c.stdout
    d = run("-o", "yaml", "diagnose", "-o", "json", "--from-dump", MOTIVATING)
    assert json.loads(d.stdout)["kind"] == "Diagnosis", "the command's own flag wins"


def test_summary_names_the_exact_follow_up_command():
    out = run("diagnose", "--from-dump", MOTIVATING).stdout
    assert f"See the fix plan: kubectl multus fix --dry-run --from-dump {MOTIVATING}" in out


def test_debug_shows_the_traceback():
    r = run("diagnose", "--from-dump", "/nonexistent/dump", "--debug")
    assert r.exception is not None and "not a directory" in str(r.exception)


def test_version():
    from kubectl_multus import __version__

    r = run("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"kubectl-multus {__version__}"


def test_usage_error_is_exit_2():
    assert run("diagnose", "--no-such-flag").exit_code == ExitStatus.USAGE
    assert run("diagnose", "-o", "xml").exit_code == ExitStatus.USAGE
    both = run("fix", "--dry-run", "--node", "a", "--all-nodes", "--from-dump", MOTIVATING)
    assert both.exit_code == ExitStatus.USAGE and "exclude each other" in both.stderr


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\nfrom kubectl_multus.__main__ import main\nsys.argv=['kubectl-multus','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy=[m for m in ('kubernetes','tabulate','yaml') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.stderr.strip().endswith("[]"), r.stderr


def test_console_script_runs_the_motivating_example():
    r = subprocess.run(
        [installed_executable(), "diagnose", "--from-dump", MOTIVATING],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert r.returncode == 1 and "M103" in r.stdout


def test_kubectl_finds_the_plugin(tmp_path):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (CI has it)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl-multus").symlink_to(installed_executable())
    env = {"PATH": f"{bindir}:{Path(kubectl).parent}", "HOME": str(tmp_path), "NO_COLOR": "1"}
    listed = subprocess.run([kubectl, "plugin", "list"], capture_output=True, text=True, env=env, check=False)
    assert str(bindir / "kubectl-multus") in listed.stdout, listed.stdout + listed.stderr
    r = subprocess.run(
        [kubectl, "multus", "diagnose", "--from-dump", MOTIVATING], capture_output=True, text=True, env=env, check=False
    )
    assert r.returncode == 1 and "prefix applied twice" in r.stdout, r.stderr


def test_findings_catalogue_doc_is_current():
    from kubectl_multus.render import catalogue_markdown

    doc = (REPO / "docs" / "findings.md").read_text()
    assert doc == catalogue_markdown(), "regenerate: python scripts/render-docs.py"


def test_readme_lists_every_check_of_the_catalogue():
    from kubectl_multus.render import checks_markdown

    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- checks:", 1)[1].split("\n", 1)[1].split("<!-- end of checks -->")[0]
    assert block == checks_markdown(), "regenerate: python scripts/render-docs.py"


def test_unexpected_error_is_one_line_and_exit_3(monkeypatch, capsys):
    from kubectl_multus import cli

    def boom(**_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "app", boom)
    monkeypatch.setattr(sys, "argv", ["kubectl-multus", "diagnose"])
    with pytest.raises(SystemExit) as exit_info:
        cli.run()
    assert exit_info.value.code == ExitStatus.CANNOT_CHECK
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and err.count("\n") == 1


def test_readme_first_commands_are_the_ci_and_example_commands():
    readme = (REPO / "README.md").read_text().splitlines()
    head = "\n".join(readme[:15])
    assert "bash .ci/run" in head
    assert "kubectl-multus diagnose --from-dump examples/k3s-thin-doubled-prefix" in head


def test_a_dump_file_that_is_not_utf8_is_bad_input(tmp_path):
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "nodes.yaml").write_bytes(b"kind: Node\nmetadata:\n  name: caf\xe9\n")
    r = run("diagnose", "--from-dump", str(tmp_path))
    assert r.exit_code == ExitStatus.CANNOT_CHECK and "not UTF-8" in r.stderr and r.stderr.count("\n") == 1


def _help_options(*args: str) -> set[str]:
    text = run(*args, "--help").stdout
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]+)", text, re.M)) - {"--help"}


def test_readme_usage_follows_the_help():
    """Every command and shared flag --help shows is documented in the README, and the README
    documents none that does not exist."""
    readme = (REPO / "README.md").read_text()
    commands = set(re.findall(r"^  ([a-z][a-z-]+)\s{2,}", run("--help").stdout, re.M))
    assert commands >= {"diagnose", "show-paths", "fix", "dump", "rollback", "cleanup"}
    for command in commands:
        assert f"kubectl multus {command}" in readme, f"README does not mention kubectl multus {command}"
    options = set().union(*(_help_options(c) for c in commands))
    documented = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*[a-z])", readme))
    missing = options - documented - {"--version"}
    assert not missing, f"flags in --help but not in the README: {sorted(missing)}"
    table = readme.split("| flag | meaning |", 1)[1].split("\n\n", 1)[0]
    stale = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*[a-z])", table)) - options
    assert not stale, f"the README's flag table lists flags that --help does not have: {sorted(stale)}"


def test_every_command_help_has_a_purpose_and_an_example():
    for command in ("diagnose", "show-paths", "fix", "dump", "rollback", "cleanup"):
        text = run(command, "--help").stdout
        assert "Example: kubectl multus " + command in " ".join(text.split()), command
