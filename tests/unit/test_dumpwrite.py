"""Writing a snapshot as a dump (adapters.dumpwrite) with secrets stripped and identities redacted (core.redact)."""

from __future__ import annotations

import base64
import copy
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_multus.adapters.dumpdir import load
from kubectl_multus.adapters.dumpwrite import write
from kubectl_multus.core.diagnose import diagnose
from kubectl_multus.core.redact import REDACTED, node_aliases, redact_identities, strip_secrets
from kubectl_multus.core.snapshot import Entry, NodeFiles, Snapshot
from kubectl_multus.errors import InputError
from tests import scenarios as sc

EXAMPLES = sorted(p for p in (sc.REPO / "examples").iterdir() if p.is_dir())
FIELDS = ("nodes", "daemonsets", "configmaps", "pods", "others", "logs", "node_files", "node_errors", "workloads")
K3S_CONF = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
KUBECONFIG = f"{K3S_CONF}/multus.d/multus.kubeconfig"


def tree(root: Path) -> dict[str, bytes]:
    """Every file and symlink below root: relative path -> bytes (a link: its target)."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                out[str(path.relative_to(root))] = os.readlink(path).encode()
            elif path.is_file():
                out[str(path.relative_to(root))] = path.read_bytes()
    return out


def everything(root: Path) -> bytes:
    """All names and bytes of a written dump, for grepping."""
    return b"\n".join(name.encode() + b"\n" + data for name, data in tree(root).items())


# --- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_bundled_example_reads_back_equal(example: Path, tmp_path: Path) -> None:
    original = load(str(example))
    write(original, tmp_path / "dump")
    back = load(str(tmp_path / "dump"))
    for name in FIELDS:
        assert getattr(back, name) == getattr(original, name), name


def built() -> Snapshot:
    """Links (relative, absolute, pointing out of the dump), empty dirs, binaries, roots, an
    unreadable node, current and previous logs, and strings YAML likes to mangle."""
    files = sc.node_files(
        {
            f"{K3S_CONF}/10-flannel.conflist": '{"name": "cbr0"}\n',
            "/var/lib/rancher/k3s/data/3ccf8a82/bin/flannel": None,  # a binary: only its name is kept
        },
        dirs=[f"{K3S_CONF}/multus.d"],
    )
    entries = {
        **files.entries,
        "/var/lib/rancher/k3s/data/current": Entry("link", target="3ccf8a82"),
        "/etc": Entry("dir"),
        "/etc/cni": Entry("dir"),
        "/etc/cni/net.d": Entry("link", target=K3S_CONF),
        "/etc/cni/outside": Entry("link", target="/../../../../outside"),
    }
    tricky = {
        "trailing": "line with trailing space \nnext\n",
        "no-newline": "a\nb",
        "yaml-words": "yes",
        "unicode": "naïve – ✓\n",
        "tabs": "\tindented\n\n",
    }
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "t", "namespace": "kube-system"},
        "data": tricky,
    }
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": {"name": "macvlan"}}
    workload = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "app-1",
            "namespace": "default",
            "annotations": {"k8s.v1.cni.cncf.io/networks": "macvlan@net1"},
        },
        "spec": {"nodeName": "k3s-1", "containers": [{"name": "app", "image": "busybox"}]},
        "status": {"phase": "Running"},
    }
    return Snapshot(
        source="built",
        nodes=(sc.node("k3s-1", "k3s"), sc.node("k3s-2", "k3s")),
        configmaps=(cm,),
        others=(nad,),
        logs={
            ("kube-system", "kube-multus-ds-k3s-1", "kube-multus", False): "started\n",
            ("kube-system", "kube-multus-ds-k3s-1", "kube-multus", True): "failed: no such file\n",
        },
        node_files={"k3s-1": NodeFiles(entries, roots=("/etc/cni", "/var/lib/rancher/k3s"))},
        node_errors={"k3s-2": "pods/exec is forbidden"},
        workloads=(workload,),
    )


def test_built_snapshot_reads_back_with_links_dirs_roots_and_unreadable_nodes(tmp_path: Path) -> None:
    original = built()
    write(original, tmp_path / "dump")
    back = load(str(tmp_path / "dump"))

    # a file whose content was not kept comes back empty: its existence is what is kept
    expected = {
        p: Entry("file", "") if e.kind == "file" and e.content is None else e
        for p, e in original.node_files["k3s-1"].entries.items()
    }
    assert dict(back.node_files["k3s-1"].entries) == expected
    assert back.node_files["k3s-1"].roots == ("/etc/cni", "/var/lib/rancher/k3s")
    assert back.node_errors == {"k3s-2": "pods/exec is forbidden"}
    assert "k3s-2" not in back.node_files
    assert back.logs == original.logs
    assert (back.nodes, back.configmaps, back.others) == (original.nodes, original.configmaps, original.others)
    assert back.workloads == original.workloads and back.pods == ()  # read back as workloads, not Multus's pods
    assert (tmp_path / "dump" / "objects" / "workloads.yaml").is_file()


def test_workload_pods_lose_their_secrets_too(tmp_path: Path) -> None:
    snap = built()
    pod = copy.deepcopy(snap.workloads[0])
    pod["spec"]["containers"][0]["env"] = [{"name": "API_TOKEN", "value": "s3cr3t-workload-token"}]
    write(replace(snap, workloads=(pod,)), tmp_path / "dump")
    assert b"s3cr3t-workload-token" not in everything(tmp_path / "dump")
    back = load(str(tmp_path / "dump"))
    assert back.workloads[0]["spec"]["containers"][0]["env"] == [{"name": "API_TOKEN", "value": REDACTED}]


def test_symlinks_are_written_as_recorded_and_never_followed(tmp_path: Path) -> None:
    write(built(), tmp_path / "dump")
    node = tmp_path / "dump" / "nodes" / "k3s-1"
    assert os.readlink(node / "etc/cni/outside") == "/../../../../outside"
    assert os.readlink(node / "etc/cni/net.d") == K3S_CONF
    assert os.readlink(node / "var/lib/rancher/k3s/data/current") == "3ccf8a82"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump"]


def test_write_returns_every_file_and_link_it_wrote(tmp_path: Path) -> None:
    written = write(built(), tmp_path / "dump")
    assert sorted(str(p.relative_to(tmp_path / "dump")) for p in written) == sorted(tree(tmp_path / "dump"))
    assert {"README.txt", "objects/nodes.yaml", "objects/configmaps.yaml", "objects/others.yaml"} <= set(
        tree(tmp_path / "dump")
    )
    assert not (tmp_path / "dump" / "objects" / "daemonsets.yaml").exists()  # empty lists are left out
    assert "secrets were removed" in (tmp_path / "dump" / "README.txt").read_text().lower()


def test_objects_are_v1_lists_and_items_get_their_kind(tmp_path: Path) -> None:
    bare = {"metadata": {"name": "k3s-1"}, "status": {}}  # list items from the API carry no kind
    write(Snapshot("t", nodes=(bare,)), tmp_path / "dump")
    doc = yaml.safe_load((tmp_path / "dump" / "objects" / "nodes.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "List")
    assert doc["items"] == [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "k3s-1"}, "status": {}}]


# --- refusals -----------------------------------------------------------------------------------


def with_entries(entries: dict[str, Entry], node: str = "k3s-1") -> Snapshot:
    return Snapshot("t", nodes=(sc.node("k3s-1", "k3s"),), node_files={node: NodeFiles(entries)})


@pytest.mark.parametrize(
    "snapshot",
    [
        pytest.param(with_entries({"/../../escape": Entry("file", "x")}), id="dot-dot-from-root"),
        pytest.param(with_entries({"/etc/../../../escape": Entry("file", "x")}), id="dot-dot-inside"),
        pytest.param(with_entries({"escape": Entry("file", "x")}), id="relative-path"),
        pytest.param(
            with_entries({"/etc/cni": Entry("link", target="/tmp"), "/etc/cni/escape": Entry("file", "x")}),
            id="file-below-a-symlink",
        ),
        pytest.param(with_entries({"/.captured": Entry("file", "/")}), id="overwrites-a-marker"),
        pytest.param(with_entries({"/etc/x": Entry("file", "x")}, node="../escape"), id="node-name-climbs"),
        pytest.param(
            Snapshot("t", nodes=(sc.node("k3s-1", "k3s"),), logs={("kube-system", "../../escape", "c", False): "x"}),
            id="pod-name-climbs",
        ),
    ],
)
def test_paths_that_would_leave_the_dump_are_refused_before_anything_is_written(
    snapshot: Snapshot, tmp_path: Path
) -> None:
    target = tmp_path / "a" / "b" / "dump"
    with pytest.raises(InputError, match="cannot write dump"):
        write(snapshot, target)
    assert list(tmp_path.rglob("*")) == []


def test_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        write(built(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_file_is_not_a_dump_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="not a directory"):
        write(built(), tmp_path / "f")


def test_an_empty_directory_is_written_into(tmp_path: Path) -> None:
    write(built(), tmp_path)
    assert load(str(tmp_path)).node_errors == {"k3s-2": "pods/exec is forbidden"}


# --- secrets ------------------------------------------------------------------------------------

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6InMxIn0.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLWp3dC1zZWNyZXQ"
LOG_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2ctbGluZS1zZWNyZXQifQ.bG9nLXNpZ25hdHVyZQ"
CLIENT_KEY = base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\nclientkeysecret\n").decode()
CLIENT_CERT = base64.b64encode(b"client-certificate-secret").decode()
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCpembodysecret"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
SECRETS = {
    "token": JWT,
    "client-key-data": CLIENT_KEY,
    "client-certificate-data": CLIENT_CERT,
    "pem": PEM_BODY,
    "log jwt": LOG_JWT,
    "password": "hunter2-password-secret",
    "secret object": "c2VjcmV0LW9iamVjdC12YWx1ZQ==",
    "env token": "env-token-value-secret",
    "env key": "env-key-value-secret",
    "last-applied": "last-applied-secret",
    "pod env password": "pod-password-secret",
}
MULTUS_KUBECONFIG = f"""\
# Kubeconfig file for Multus CNI plugin.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://10.43.0.1:443
    certificate-authority: /var/lib/rancher/k3s/agent/etc/cni/net.d/multus.d/ca.crt
users:
- name: multus
  user:
    token: "{JWT}"
    client-key-data: {CLIENT_KEY}
    client-certificate-data: {CLIENT_CERT}
- name: admin
  user:
    username: admin
    password: hunter2-password-secret
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
"""


def with_secrets() -> Snapshot:
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "kube-multus-ds",
            "namespace": "kube-system",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"env": "last-applied-secret"}',
                "deprecated.daemonset.template.generation": "1",
            },
        },
        "spec": {
            "selector": {"matchLabels": {"name": "multus"}},
            "template": {
                "metadata": {"labels": {"name": "multus"}},
                "spec": {
                    "containers": [
                        {
                            "name": "kube-multus",
                            "image": "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.2.2",
                            "command": ["/thin_entrypoint"],
                            "env": [
                                {"name": "API_TOKEN", "value": "env-token-value-secret"},
                                {"name": "ssh_Key", "value": "env-key-value-secret"},
                                {
                                    "name": "KUBERNETES_NODE_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                },
                                {"name": "LOG_LEVEL", "value": "debug"},
                            ],
                        }
                    ]
                },
            },
        },
    }
    pod = sc.pod(copy.deepcopy(ds), "k3s-1")
    pod["spec"]["containers"][0]["env"].append({"name": "DB_PASSWORD", "value": "pod-password-secret"})
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "certs", "namespace": "kube-system"},
        "data": {
            "tls.key": f"# the node's key\n{PEM}",
            "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBpublic\n-----END CERTIFICATE-----\n",
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "multus-token", "namespace": "kube-system"},
        "data": {"token": "c2VjcmV0LW9iamVjdC12YWx1ZQ=="},
    }
    files = sc.node_files(
        {KUBECONFIG: MULTUS_KUBECONFIG, f"{K3S_CONF}/00-multus.conf": json.dumps({"kubeconfig": KUBECONFIG})}
    )
    return Snapshot(
        source="secrets",
        nodes=(sc.node("k3s-1", "k3s"),),
        daemonsets=(ds,),
        configmaps=(cm,),
        pods=(pod,),
        others=(secret,),
        logs={
            (
                "kube-system",
                pod["metadata"]["name"],
                "kube-multus",
                False,
            ): f"2026-12-03 using token {LOG_JWT} for API\n"
        },
        node_files={"k3s-1": files},
    )


def test_no_secret_value_is_written_anywhere(tmp_path: Path) -> None:
    write(with_secrets(), tmp_path / "dump")
    written = everything(tmp_path / "dump")
    leaked = [what for what, value in SECRETS.items() if value.encode() in written]
    assert leaked == []
    assert b"PRIVATE KEY" not in written


def test_secrets_go_but_the_structure_diagnosis_needs_stays(tmp_path: Path) -> None:
    write(with_secrets(), tmp_path / "dump")
    back = load(str(tmp_path / "dump"))

    kubeconfig = yaml.safe_load(back.node_files["k3s-1"].read(KUBECONFIG) or "")
    users = {u["name"]: u["user"] for u in kubeconfig["users"]}
    assert users["multus"] == {"token": REDACTED, "client-key-data": REDACTED, "client-certificate-data": REDACTED}
    assert users["admin"] == {"username": "admin", "password": REDACTED}
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.43.0.1:443"
    assert kubeconfig["current-context"] == "multus-context"

    assert [o["kind"] for o in back.others] == []  # the Secret is left out
    ds = back.daemonsets[0]
    assert ds["metadata"]["annotations"] == {"deprecated.daemonset.template.generation": "1"}
    env = {
        e["name"]: e.get("value", e.get("valueFrom")) for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env == {
        "API_TOKEN": REDACTED,
        "ssh_Key": REDACTED,
        "KUBERNETES_NODE_NAME": {"fieldRef": {"fieldPath": "spec.nodeName"}},
        "LOG_LEVEL": "debug",
    }
    pod_env = {e["name"]: e.get("value") for e in back.pods[0]["spec"]["containers"][0]["env"]}
    assert pod_env["DB_PASSWORD"] == REDACTED

    data = back.configmaps[0]["data"]
    assert data["tls.key"] == f"# the node's key\n{REDACTED}\n"
    assert data["ca.crt"].startswith("-----BEGIN CERTIFICATE-----\nMIIBpublic")  # public: kept
    assert next(iter(back.logs.values())) == f"2026-12-03 using token {REDACTED} for API\n"


def scrubbed(text: str) -> str:
    snapshot = Snapshot("t", node_files={"n": NodeFiles({"/f": Entry("file", text)})})
    return strip_secrets(snapshot).node_files["n"].read("/f") or ""


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        pytest.param(
            '{"users": [{"name": "u", "user": {"token": "json-token-secret"}}], "current-context": "c"}',
            "json-token-secret",
            '"current-context": "c"',
            id="json-kubeconfig",
        ),
        pytest.param(
            "users:\n- name: u\n  user:\n    client-key-data: |\n      YmxvY2stc2VjcmV0\n      bW9yZS1zZWNyZXQ=\n    username: me\n",
            "YmxvY2stc2VjcmV0",
            "username: me",
            id="block-scalar-value",
        ),
        pytest.param(
            "users:\n- name: u\n  user:\n    token: broken-yaml-secret\n   oops: [\n",
            "broken-yaml-secret",
            "oops: [",
            id="unparseable-kubeconfig",
        ),
        pytest.param(
            "users:\n- name: u\n  user:\n    exec:\n      command: aws\n      args: [eks, get-token, --token, exec-arg-secret]\n"
            "      env:\n      - name: AWS_PROFILE\n        value: exec-env-secret\n",
            "exec-env-secret",
            "command: aws",
            id="exec-plugin",
        ),
        pytest.param(
            "users:\n- name: u\n  user:\n    auth-provider:\n      name: oidc\n      config: {id-token: oidc-id-secret, client-id: k}\n",
            "oidc-id-secret",
            "name: oidc",
            id="auth-provider",
        ),
        pytest.param(
            "before\n-----BEGIN EC PRIVATE KEY-----\ntruncated-key-secret",
            "truncated-key-secret",
            "before\n",
            id="pem-unterminated",
        ),
        pytest.param(
            "Password: 'quoted-password-secret'\nother: 1\n", "quoted-password-secret", "other: 1", id="password-line"
        ),
        pytest.param(
            "password: |\n  block-password-secret\nother: 1\n", "block-password-secret", "other: 1", id="password-block"
        ),
    ],
)
def test_credentials_in_text_are_replaced(text: str, secret: str, kept: str) -> None:
    out = scrubbed(text)
    assert secret not in out
    assert kept in out
    assert REDACTED in out


def test_exec_args_are_replaced_too() -> None:
    out = scrubbed(
        "users:\n- name: u\n  user:\n    exec:\n      command: aws\n      args: [--token, exec-arg-secret]\n"
    )
    assert "exec-arg-secret" not in out


def test_a_private_key_in_binary_data_is_replaced() -> None:
    cm = {"kind": "ConfigMap", "metadata": {"name": "k"}, "binaryData": {"k": base64.b64encode(PEM.encode()).decode()}}
    out = strip_secrets(Snapshot("t", configmaps=(cm,))).configmaps[0]["binaryData"]["k"]
    assert base64.b64decode(out).decode() == f"{REDACTED}\n"


def test_text_without_secrets_is_left_alone() -> None:
    original = load(str(sc.REPO / "examples" / "kubeadm-healthy"))
    assert strip_secrets(original) == original


# --- identities ---------------------------------------------------------------------------------


def with_addresses() -> Snapshot:
    """The three-node example with addresses where a live cluster has them."""
    original = load(str(sc.REPO / "examples" / "k3s-multinode-one-broken"))
    ips = {"k3s-1": "192.168.1.11", "k3s-2": "192.168.1.12", "k3s-3": "192.168.1.13"}
    nodes = []
    for n in original.nodes:
        n = copy.deepcopy(dict(n))
        name = n["metadata"]["name"]
        n["status"]["addresses"] = [{"type": "InternalIP", "address": ips[name]}, {"type": "Hostname", "address": name}]
        nodes.append(n)
    pods = []
    for p in original.pods:
        p = copy.deepcopy(dict(p))
        ip = ips[p["spec"]["nodeName"]]
        p["status"].update(hostIP=ip, podIP=ip, podIPs=[{"ip": ip}, {"ip": "2001:db8::5"}])
        pods.append(p)
    logs = dict(original.logs)
    key = next(k for k in logs if k[1] == "kube-multus-ds-k3s-2")
    logs[key] += "\nk3s-2 (192.168.1.12) to 127.0.0.1 and 2001:db8::5, pods 10.42.0.0/16\n"
    files = dict(original.node_files)
    hosts = "127.0.0.1 localhost\n192.168.1.11 k3s-1\n192.168.1.12 k3s-2\n"
    files["k3s-1"] = replace(files["k3s-1"], entries={**files["k3s-1"].entries, "/etc/hosts": Entry("file", hosts)})
    return replace(original, nodes=tuple(nodes), pods=tuple(pods), logs=logs, node_files=files)


def findings(snapshot: Snapshot, alias: dict[str, str] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    alias = alias or {}
    return sorted((f.code, tuple(alias.get(n, n) for n in f.nodes)) for f in diagnose(snapshot, None).findings)


def test_redacted_dump_diagnoses_the_same_findings_on_the_renamed_nodes(tmp_path: Path) -> None:
    original = with_addresses()
    alias = node_aliases(original)
    assert alias == {"k3s-1": "node-1", "k3s-2": "node-2", "k3s-3": "node-3"}
    write(original, tmp_path / "dump", redact=True)
    back = load(str(tmp_path / "dump"))
    assert findings(back) == findings(original, alias)
    assert ("M201", ("node-2",)) in findings(back)


def test_redacted_dump_holds_no_node_name_or_address(tmp_path: Path) -> None:
    write(with_addresses(), tmp_path / "dump", redact=True)
    written = everything(tmp_path / "dump")
    for identity in (b"k3s-1", b"k3s-2", b"k3s-3", b"192.168.1.", b"2001:db8"):
        assert identity not in written
    assert b"/var/lib/rancher/k3s/agent" in written  # host paths stay


def test_names_and_addresses_are_replaced_consistently(tmp_path: Path) -> None:
    write(with_addresses(), tmp_path / "dump", redact=True)
    back = load(str(tmp_path / "dump"))
    node = {n["metadata"]["name"]: n for n in back.nodes}
    assert sorted(node) == ["node-1", "node-2", "node-3"]
    assert sorted(back.node_files) == ["node-1", "node-2", "node-3"]
    ip = {name: n["status"]["addresses"][0]["address"] for name, n in node.items()}
    assert ip == {"node-1": "10.255.0.1", "node-2": "10.255.0.2", "node-3": "10.255.0.3"}
    for name, n in node.items():
        assert n["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert n["spec"]["providerID"] == f"k3s://{name}"
        assert n["status"]["addresses"][1]["address"] == name
    for p in back.pods:
        on = p["spec"]["nodeName"]
        assert p["metadata"]["name"] == f"kube-multus-ds-{on}"
        assert p["status"]["hostIP"] == ip[on]
        assert p["status"]["podIPs"] == [{"ip": ip[on]}, {"ip": "fd00::1"}]
    assert {k[1] for k in back.logs} == {"kube-multus-ds-node-1", "kube-multus-ds-node-2", "kube-multus-ds-node-3"}
    log = next(text for k, text in back.logs.items() if k[1] == "kube-multus-ds-node-2")
    assert "node-2 (10.255.0.2) to 127.0.0.1 and fd00::1, pods 10.42.0.0/16" in log
    hosts = back.node_files["node-1"].read("/etc/hosts")
    assert hosts == "127.0.0.1 localhost\n10.255.0.1 node-1\n10.255.0.2 node-2\n"


def redacted_log(text: str, nodes: tuple[str, ...] = ("k3s", "k3s-1")) -> str:
    snapshot = Snapshot("t", nodes=tuple(sc.node(n, "k3s") for n in nodes), logs={("ns", "p", "c", False): text})
    return redact_identities(snapshot).logs[("ns", "p", "c", False)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("node k3s-1 ready", "node node-2 ready", id="name-as-word"),
        pytest.param("pod kube-multus-ds-k3s-1", "pod kube-multus-ds-node-2", id="name-embedded-in-pod-name"),
        pytest.param("k3s-10, k3s-1x, k3s-agent", "k3s-10, k3s-1x, k3s-agent", id="longer-word-kept"),
        pytest.param("/var/lib/rancher/k3s/agent", "/var/lib/rancher/k3s/agent", id="path-segment-kept"),
        pytest.param("https://k3s:6443", "https://node-1:6443", id="url-host"),
        pytest.param("k3s-1.example.com", "node-2.example.com", id="host-of-a-domain-name"),
        pytest.param(
            "127.0.0.1 0.0.0.0 ::1 :: 169.254.169.254", "127.0.0.1 0.0.0.0 ::1 :: 169.254.169.254", id="special-kept"
        ),
        pytest.param("cidr 10.42.0.0/16", "cidr 10.42.0.0/16", id="cidr-kept"),
        pytest.param("addr 192.168.1.7/24", "addr 10.255.0.1/24", id="address-with-prefix"),
        pytest.param("at 192.168.1.7.", "at 10.255.0.1.", id="address-ending-a-sentence"),
        pytest.param("v1.2.3.4 and 999.1.1.1", "v1.2.3.4 and 999.1.1.1", id="not-addresses"),
        pytest.param("at 10:00:00 mac aa:bb:cc:dd:ee:ff", "at 10:00:00 mac aa:bb:cc:dd:ee:ff", id="times-and-macs"),
        pytest.param("[2001:db8::5]:443", "[fd00::1]:443", id="ipv6"),
    ],
)
def test_redaction_in_text(text: str, expected: str) -> None:
    assert redacted_log(text) == expected


def test_node_aliases_follow_natural_order_so_anonymous_names_stay() -> None:
    snapshot = Snapshot("t", nodes=tuple(sc.node(f"node-{i}", "k3s") for i in (10, 2, 1)))
    assert node_aliases(snapshot) == {"node-1": "node-1", "node-2": "node-2", "node-10": "node-3"}
    assert redacted_log("node-10 node-2", nodes=("node-1", "node-2", "node-10")) == "node-3 node-2"


def test_provider_id_ending_in_the_node_name_is_renamed() -> None:
    gke = sc.node("gke-pool-abc", "gke")
    out: Any = redact_identities(Snapshot("t", nodes=(gke,))).nodes[0]
    assert out["spec"]["providerID"] == "gce://project/us-central1-a/node-1"
