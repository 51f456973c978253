"""Choosing the cluster as kubectl does, and an isolated client for it (kubectl_multus.adapters.kubeconn).

Kubeconfig files are written to tmp_path; nothing talks to a network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_multus.adapters.kubeconn import Connection, new_client, parse_duration, resolve
from kubectl_multus.errors import InputError

SECRET = "s3cret-token"


def context(name: str, *, server: str = "", token: str = "", namespace: str = "", cluster: str = "") -> dict[str, Any]:
    """Sections for one context with its own cluster and user; valid defaults derived from the name."""
    body = {"cluster": cluster or name, "user": name, **({"namespace": namespace} if namespace else {})}
    return {
        "clusters": [{"name": cluster or name, "cluster": {"server": server or f"https://{name}.example:6443"}}],
        "users": [{"name": name, "user": {"token": token or f"tok-{name}"}}],
        "contexts": [{"name": name, "context": body}],
    }


def kubeconfig(*parts: dict[str, Any], current: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for part in parts:
        for section, entries in part.items():
            doc[section] += entries
    if current is not None:
        doc["current-context"] = current
    return doc


def write(path: Path, doc: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME: the real ~/.kube/config must never leak into a test."""
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def env_with(home: Path, *kubeconfigs: str, **extra: str) -> dict[str, str]:
    env = {"HOME": str(home), **extra}
    if kubeconfigs:
        env["KUBECONFIG"] = os.pathsep.join(kubeconfigs)
    return env


# --- which context, which server ---------------------------------------------------------------

A = kubeconfig(context("ctx-a"), context("shared", server="https://shared-from-a:6443"), current="ctx-a")
B = kubeconfig(
    context("ctx-b", namespace="team-b"), context("shared", server="https://shared-from-b:6443"), current="ctx-b"
)
NO_CURRENT = kubeconfig(context("ctx-n"), current="")
# ctx-c names cluster "ctx-a", which the first file also defines with another server.
C = kubeconfig(context("ctx-c", cluster="ctx-a", server="https://ctx-a-from-c:6443"), current="ctx-c")


@pytest.mark.parametrize(
    ("files", "flag", "listed", "ctx", "want"),
    [
        pytest.param(
            {"a": A, "b": B},
            None,
            ["a", "b"],
            None,
            ("ctx-a", "https://ctx-a.example:6443", None),
            id="first file's current-context wins",
        ),
        pytest.param(
            {"a": A, "b": B},
            None,
            ["b", "a"],
            None,
            ("ctx-b", "https://ctx-b.example:6443", "team-b"),
            id="order of KUBECONFIG decides",
        ),
        pytest.param(
            {"a": A, "b": B},
            None,
            ["b", "a"],
            "shared",
            ("shared", "https://shared-from-b:6443", None),
            id="duplicate context: first file wins",
        ),
        pytest.param(
            {"a": A, "b": B},
            None,
            ["a", "b"],
            "shared",
            ("shared", "https://shared-from-a:6443", None),
            id="duplicate context: first file wins (other order)",
        ),
        pytest.param(
            {"a": A, "c": C},
            None,
            ["a", "c"],
            "ctx-c",
            ("ctx-c", "https://ctx-a.example:6443", None),
            id="duplicate cluster: first file wins",
        ),
        pytest.param(
            {"n": NO_CURRENT, "b": B},
            None,
            ["n", "b"],
            None,
            ("ctx-b", "https://ctx-b.example:6443", "team-b"),
            id="empty current-context does not count",
        ),
        pytest.param(
            {"a": A},
            None,
            ["missing", "a", "missing-too"],
            None,
            ("ctx-a", "https://ctx-a.example:6443", None),
            id="missing files skipped",
        ),
        pytest.param(
            {"a": A},
            None,
            ["", "a", ""],
            None,
            ("ctx-a", "https://ctx-a.example:6443", None),
            id="empty KUBECONFIG entries skipped",
        ),
        pytest.param(
            {"a": A, "b": B},
            "b",
            ["a"],
            None,
            ("ctx-b", "https://ctx-b.example:6443", "team-b"),
            id="--kubeconfig overrides KUBECONFIG",
        ),
        pytest.param(
            {"a": A, "b": B},
            None,
            ["a", "b"],
            "ctx-b",
            ("ctx-b", "https://ctx-b.example:6443", "team-b"),
            id="--context picks from a later file",
        ),
        pytest.param(
            {"home/.kube/config": A},
            None,
            [],
            None,
            ("ctx-a", "https://ctx-a.example:6443", None),
            id="no KUBECONFIG: ~/.kube/config",
        ),
    ],
)
def test_resolve_picks_context_and_server_like_kubectl(
    tmp_path: Path,
    home: Path,
    files: dict[str, dict[str, Any]],
    flag: str | None,
    listed: list[str],
    ctx: str | None,
    want: tuple[str, str, str | None],
) -> None:
    for name, doc in files.items():
        write(tmp_path / name, doc)
    listed_paths = [str(tmp_path / n) if n else "" for n in listed]
    env = env_with(home, *listed_paths) if listed else {"HOME": str(home)}
    conn = resolve(str(tmp_path / flag) if flag else None, ctx, None, env)
    assert (conn.context, conn.server, conn.namespace) == want
    assert not conn.in_cluster


def test_first_file_current_context_wins_where_the_python_client_takes_the_last(tmp_path: Path, home: Path) -> None:
    """Why we merge ourselves: kubernetes.config lets the last file set current-context
    (kubernetes-client/python PR 2386). If this starts failing on ctx-a, upstream has changed."""
    from kubernetes import config

    a, b = write(tmp_path / "a", A), write(tmp_path / "b", B)
    _, python_current = config.list_kube_config_contexts(config_file=os.pathsep.join([a, b]))
    ours = resolve(None, None, None, env_with(home, a, b))
    assert (ours.context, python_current["name"]) == ("ctx-a", "ctx-b")


def test_kubeconfig_env_is_read_at_call_time(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The python client freezes $KUBECONFIG at import; resolve() reads os.environ when called."""
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", write(tmp_path / "b", B))
    assert resolve(None, None, None).context == "ctx-b"


def test_an_empty_file_is_an_empty_config(tmp_path: Path, home: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    conn = resolve(None, None, None, env_with(home, str(empty), write(tmp_path / "b", B)))
    assert (conn.context, conn.source) == ("ctx-b", f"{empty}, {tmp_path / 'b'}")


def test_merged_config_keeps_first_entries_and_current_context(tmp_path: Path, home: Path) -> None:
    a, b = write(tmp_path / "a", A), write(tmp_path / "b", B)
    conn = resolve(None, None, None, env_with(home, a, b))
    assert conn.config["current-context"] == "ctx-a"
    assert [c["name"] for c in conn.config["contexts"]] == ["ctx-a", "shared", "ctx-b"]
    assert conn.source == f"{a}, {b}"


# --- errors ------------------------------------------------------------------------------------


def bad_user() -> dict[str, Any]:
    doc = kubeconfig(context("ctx-a", token=SECRET), current="ctx-a")
    doc["contexts"][0]["context"]["user"] = "nobody"
    return doc


def bad_cluster() -> dict[str, Any]:
    doc = kubeconfig(context("ctx-a", token=SECRET), current="ctx-a")
    doc["contexts"][0]["context"]["cluster"] = "nowhere"
    return doc


def no_server() -> dict[str, Any]:
    doc = kubeconfig(context("ctx-a", token=SECRET), current="ctx-a")
    doc["clusters"][0]["cluster"] = {"insecure-skip-tls-verify": True}
    return doc


def twice() -> dict[str, Any]:
    return kubeconfig(context("ctx-a", token=SECRET), context("ctx-a", token=SECRET), current="ctx-a")


@pytest.mark.parametrize(
    ("doc", "ctx", "message"),
    [
        pytest.param(
            kubeconfig(context("ctx-a", token=SECRET), current="ctx-a"),
            "nope",
            'context "nope" not found in {a}',
            id="unknown --context",
        ),
        pytest.param(
            kubeconfig(context("ctx-a", token=SECRET), current="gone"),
            None,
            'context "gone" not found in {a}',
            id="unknown current-context",
        ),
        pytest.param(
            kubeconfig(context("ctx-a", token=SECRET)),
            None,
            "no current context is set in {a}: pass --context",
            id="no current-context",
        ),
        pytest.param(
            bad_cluster(),
            None,
            'context "ctx-a" in {a}: cluster "nowhere" not found',
            id="context names a missing cluster",
        ),
        pytest.param(
            bad_user(), None, 'context "ctx-a" in {a}: user "nobody" not found', id="context names a missing user"
        ),
        pytest.param(
            no_server(), None, 'context "ctx-a" in {a}: cluster "ctx-a" has no server', id="cluster without server"
        ),
        pytest.param(twice(), None, 'kubeconfig {a}: clusters has "ctx-a" twice', id="duplicate name within one file"),
        pytest.param(
            None, None, "kubeconfig {a}: invalid YAML: mapping values are not allowed here", id="invalid YAML"
        ),
        pytest.param([1, 2], None, "kubeconfig {a}: not a mapping", id="not a mapping"),
    ],
)
def test_resolve_errors_name_the_file_and_context(
    tmp_path: Path, home: Path, doc: Any, ctx: str | None, message: str
) -> None:
    a = tmp_path / "a"
    if doc is None:
        a.write_text(f"token: {SECRET}\n  bad: : yaml\n")
    else:
        a.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as err:
        resolve(None, ctx, None, env_with(home, str(a)))
    assert str(err.value) == message.format(a=a)
    assert SECRET not in str(err.value)


def test_kubeconfig_flag_means_that_file_only(tmp_path: Path, home: Path) -> None:
    a, b = write(tmp_path / "a", A), write(tmp_path / "b", B)
    with pytest.raises(InputError) as err:
        resolve(b, "ctx-a", None, env_with(home, a))
    assert str(err.value) == f'context "ctx-a" not found in {b}'


def test_missing_kubeconfig_flag_is_an_error_even_in_a_pod(tmp_path: Path, home: Path) -> None:
    """kubectl falls back to in-cluster only when no file was named."""
    env = env_with(home, KUBERNETES_SERVICE_HOST="10.0.0.1", KUBERNETES_SERVICE_PORT="443")
    with pytest.raises(InputError, match=r"^no kubeconfig found: .*/nope does not exist$"):
        resolve(str(tmp_path / "nope"), None, None, env, service_account_dir=str(service_account(tmp_path)))


def test_no_kubeconfig_anywhere_lists_what_was_tried(tmp_path: Path, home: Path) -> None:
    x, y = str(tmp_path / "x"), str(tmp_path / "y")
    with pytest.raises(InputError) as err:
        resolve(None, None, None, env_with(home, x, y))
    assert str(err.value) == f"no kubeconfig found: none of {x}, {y} exists"


# --- relative paths ----------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_file_not_the_cwd(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "conf"
    doc = kubeconfig(context("ctx-a"), current="ctx-a")
    doc["clusters"][0]["cluster"]["certificate-authority"] = "pki/ca.crt"
    doc["users"][0]["user"] = {"client-certificate": "c.crt", "client-key": "/abs/c.key", "tokenFile": "tok"}
    doc["users"].append({"name": "on-path", "user": {"exec": {"command": "kubelogin"}}})
    path = write(conf_dir / "config", doc)
    monkeypatch.chdir(tmp_path)  # a cwd where "pki/ca.crt" does not exist
    conn = resolve(path, None, None, {"HOME": str(home)})
    assert conn.config["clusters"][0]["cluster"]["certificate-authority"] == str(conf_dir / "pki" / "ca.crt")
    assert conn.config["users"][0]["user"] == {
        "client-certificate": str(conf_dir / "c.crt"),
        "client-key": "/abs/c.key",
        "tokenFile": str(conf_dir / "tok"),
    }
    assert conn.config["users"][1]["user"]["exec"]["command"] == "kubelogin"  # a name looked up on PATH stays one


def test_new_client_reads_relative_ca_and_token_file(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "conf"
    (conf_dir / "pki").mkdir(parents=True)
    (conf_dir / "pki" / "ca.crt").write_text("not parsed until a connection is made\n")
    (conf_dir / "tok").write_text("tok-from-file")
    doc = kubeconfig(context("ctx-a"), current="ctx-a")
    doc["clusters"][0]["cluster"]["certificate-authority"] = "pki/ca.crt"
    doc["users"][0]["user"] = {"tokenFile": "tok"}
    path = write(conf_dir / "config", doc)
    monkeypatch.chdir(tmp_path)
    client = new_client(resolve(path, None, None, {"HOME": str(home)}))
    assert client.configuration.ssl_ca_cert == str(conf_dir / "pki" / "ca.crt")
    assert bearer(client) == "Bearer tok-from-file"


def test_exec_credential_plugin_with_relative_command_still_works(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "conf"
    plugin = conf_dir / "bin" / "cred"
    plugin.parent.mkdir(parents=True)
    response = '{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {"token": "tok-exec"}}'
    plugin.write_text(f"#!/bin/sh\necho '{response}'\n")
    plugin.chmod(0o755)
    doc = kubeconfig(context("ctx-a", server="http://127.0.0.1:9"), current="ctx-a")
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "./bin/cred"}}
    path = write(conf_dir / "config", doc)
    monkeypatch.chdir(tmp_path)
    conn = resolve(path, None, None, {"HOME": str(home)})
    assert conn.config["users"][0]["user"]["exec"]["command"] == str(plugin)
    assert bearer(new_client(conn)) == "Bearer tok-exec"


# --- in-cluster --------------------------------------------------------------------------------


def service_account(tmp_path: Path, *, token: str = SECRET, namespace: str = "kube-system\n") -> Path:
    sa = tmp_path / "sa"
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (sa / "namespace").write_text(namespace)
    return sa


IN_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


@pytest.mark.parametrize(
    ("extra", "server", "namespace"),
    [
        pytest.param({}, "https://10.96.0.1:443", "kube-system", id="namespace from the service account"),
        pytest.param({"POD_NAMESPACE": "multus"}, "https://10.96.0.1:443", "multus", id="POD_NAMESPACE first"),
        pytest.param({"KUBERNETES_SERVICE_HOST": "fd00::1"}, "https://[fd00::1]:443", "kube-system", id="IPv6 host"),
    ],
)
def test_in_cluster_when_no_kubeconfig_exists(
    tmp_path: Path, home: Path, extra: dict[str, str], server: str, namespace: str
) -> None:
    sa = service_account(tmp_path)
    conn = resolve(None, None, "10s", env_with(home, **{**IN_POD, **extra}), service_account_dir=str(sa))
    assert conn == Connection("in-cluster", server, namespace, 10.0, {}, f"in-cluster service account {sa}", str(sa))
    client = new_client(conn)
    assert client.configuration.host == server
    assert client.configuration.ssl_ca_cert == str(sa / "ca.crt")
    assert bearer(client) == f"bearer {SECRET}"


def test_kubeconfig_wins_over_in_cluster(tmp_path: Path, home: Path) -> None:
    env = env_with(home, write(tmp_path / "a", A), **IN_POD)
    conn = resolve(None, None, None, env, service_account_dir=str(service_account(tmp_path)))
    assert (conn.context, conn.in_cluster) == ("ctx-a", False)


@pytest.mark.parametrize(
    ("ctx", "extra", "remove", "message"),
    [
        pytest.param(
            "ctx-a",
            {},
            "",
            'context "ctx-a" not found: no kubeconfig found ({cfg}), only the in-cluster service account',
            id="--context in a pod",
        ),
        pytest.param(
            None,
            {},
            "token",
            "no kubeconfig found ({cfg}) and no in-cluster service account: {sa}/token is missing",
            id="no token",
        ),
        pytest.param(
            None,
            {"KUBERNETES_SERVICE_PORT": ""},
            "",
            "no kubeconfig found ({cfg}) and KUBERNETES_SERVICE_PORT is not set for in-cluster access",
            id="no port",
        ),
    ],
)
def test_in_cluster_errors(
    tmp_path: Path, home: Path, ctx: str | None, extra: dict[str, str], remove: str, message: str
) -> None:
    sa = service_account(tmp_path)
    if remove:
        (sa / remove).unlink()
    with pytest.raises(InputError) as err:
        resolve(None, ctx, None, env_with(home, **{**IN_POD, **extra}), service_account_dir=str(sa))
    assert str(err.value) == message.format(cfg=home / ".kube" / "config", sa=sa)
    assert SECRET not in str(err.value)


# --- the client --------------------------------------------------------------------------------


def bearer(client: Any) -> str:
    """The Authorization header value the client would send."""
    return str(client.configuration.auth_settings()["BearerToken"]["value"])


def test_new_client_uses_the_chosen_context_in_its_own_configuration(tmp_path: Path, home: Path) -> None:
    from kubernetes.client import Configuration

    default_host = Configuration.get_default_copy().host
    env = env_with(home, write(tmp_path / "a", A), write(tmp_path / "b", B))
    client = new_client(resolve(None, "ctx-b", None, env))
    assert client.configuration.host == "https://ctx-b.example:6443"
    assert bearer(client) == "Bearer tok-ctx-b"
    assert Configuration.get_default_copy().host == default_host  # the global default is untouched


def test_new_client_errors_name_the_context_and_files(tmp_path: Path, home: Path) -> None:
    doc = kubeconfig(context("ctx-a"), current="ctx-a")
    doc["clusters"][0]["cluster"]["certificate-authority"] = "missing-ca.crt"
    path = write(tmp_path / "a", doc)
    with pytest.raises(InputError) as err:
        new_client(resolve(path, None, None, {"HOME": str(home)}))
    assert str(err.value) == f'loading context "ctx-a" from {path}: File does not exist: {tmp_path / "missing-ca.crt"}'


def test_importing_the_module_does_not_import_kubernetes() -> None:
    code = "import sys, kubectl_multus.adapters.kubeconn; sys.exit('kubernetes' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


# --- --request-timeout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", None),
        ("0s", None),
        ("0m0s", None),
        ("30", 30.0),
        ("30s", 30.0),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("+2s", 2.0),
        ("250us", 0.00025),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize("text", ["", "abc", "30x", "1.5", "-1s", "1m30", "s", "٣", " 30s", "1 m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InputError) as err:
        parse_duration(text)
    assert str(err.value) == f'invalid --request-timeout "{text}": use a duration such as 30s or 1m'
