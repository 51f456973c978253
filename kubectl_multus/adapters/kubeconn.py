"""Which cluster to talk to, decided the way kubectl decides it, and an isolated client for it.

kubectl's rules (client-go `tools/clientcmd/loader.go`): --kubeconfig names one file; else every
file in $KUBECONFIG, merged so that the first file to define a cluster/user/context name or to set
current-context wins; else ~/.kube/config; else the pod's service account (in-cluster). The Python
client's own loader lets the *last* file set current-context and freezes $KUBECONFIG at import, so
we merge ourselves and always hand it an explicit dict and context.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubectl_multus.errors import InputError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER = "in-cluster"
SECTIONS = ("clusters", "users", "contexts")


@dataclass(frozen=True)
class Connection:
    """A resolved kubeconfig context (or the in-cluster service account). Holds no client."""

    context: str  # context name used ("in-cluster" when in-cluster)
    server: str  # API server URL
    namespace: str | None  # the context's namespace, if set
    timeout: float | None  # seconds for every REST call (None: none)
    config: dict[str, Any]  # the merged kubeconfig actually used ({} when in-cluster)
    source: str = ""  # where it came from, for messages: the files read, or the service-account dir
    service_account_dir: str | None = None  # set only when in-cluster

    @property
    def in_cluster(self) -> bool:
        return self.service_account_dir is not None


# --- --request-timeout -------------------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float | None:
    """kubectl's --request-timeout: a bare integer is seconds, else a Go duration ("1m30s", "500ms").
    Zero means no timeout and gives None. Example: parse_duration("1m30s") == 90.0."""
    # A bare integer is seconds (not str.isdigit: that accepts non-ASCII digits).
    seconds = float(text) if re.fullmatch(r"[0-9]+", text) else _go_duration(text)
    return seconds or None


def _go_duration(text: str) -> float:
    bad = InputError(f'invalid --request-timeout "{text}": use a duration such as 30s or 1m')
    rest = text[1:] if text.startswith("+") else text  # Go accepts a sign; a negative timeout is meaningless
    if not rest:
        raise bad
    total, pos = 0.0, 0
    while pos < len(rest):
        part = _DURATION_PART.match(rest, pos)
        if part is None:
            raise bad
        total += float(part[1]) * _UNITS[part[2]]
        pos = part.end()
    return total


# --- kubeconfig files --------------------------------------------------------------------------


def merged_kubeconfig(paths: list[str]) -> tuple[dict[str, Any], str]:
    """Merge kubeconfig files as kubectl does. Missing files are skipped; no file at all is an error.
    Returns the merged config and a description of the files read, e.g. "/a/config, /b/config"."""
    found = [p for p in paths if os.path.exists(p)]
    if not found:
        missing = f"{paths[0]} does not exist" if len(paths) == 1 else f"none of {', '.join(paths)} exists"
        raise InputError(f"no kubeconfig found: {missing}")
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", **{s: [] for s in SECTIONS}}
    for path in found:
        _merge_into(merged, _load_file(path))
    return merged, ", ".join(found)


def _merge_into(merged: dict[str, Any], doc: dict[str, Any]) -> None:
    for section in SECTIONS:
        known = {entry["name"] for entry in merged[section]}
        merged[section].extend(e for e in doc.get(section) or [] if e["name"] not in known)
    if doc.get("current-context") and not merged.get("current-context"):
        merged["current-context"] = doc["current-context"]


def _load_file(path: str) -> dict[str, Any]:
    """One kubeconfig file, checked for the shape we rely on, its relative paths made absolute."""
    import yaml  # imported here: --help must not pay for it

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"reading kubeconfig {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"kubeconfig {path}: invalid YAML: {str(exc).splitlines()[0]}") from exc
    if doc is None:
        return {}  # kubectl treats an empty file as an empty config
    if not isinstance(doc, dict):
        raise InputError(f"kubeconfig {path}: not a mapping")
    for section in SECTIONS:
        entries = doc.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("name") for e in entries):
            raise InputError(f"kubeconfig {path}: {section} must be a list of entries with a name")
        names = [str(e["name"]) for e in entries]
        if len(set(names)) < len(names):  # kubectl refuses these too ("duplicate name in list")
            dup = next(n for n in names if names.count(n) > 1)
            raise InputError(f'kubeconfig {path}: {section} has "{dup}" twice')
    return _absolute_paths(copy.deepcopy(doc), os.path.dirname(os.path.abspath(path)))


def _absolute_paths(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """kubectl resolves file references against the directory of the file that holds them
    (clientcmd `ResolveLocalPaths`); the Python client would resolve them against the cwd."""
    for entry in doc.get("clusters") or []:
        _resolve_keys(entry.get("cluster"), base, ("certificate-authority",))
    for entry in doc.get("users") or []:
        user = entry.get("user")
        _resolve_keys(user, base, ("client-certificate", "client-key", "tokenFile"))
        exec_ = user.get("exec") if isinstance(user, dict) else None
        # An exec command is resolved only when it is a path, not a name looked up on PATH.
        if isinstance(exec_, dict) and os.sep in str(exec_.get("command", "")):
            _resolve_keys(exec_, base, ("command",))
    return doc


def _resolve_keys(obj: Any, base: str, keys: tuple[str, ...]) -> None:
    if not isinstance(obj, dict):
        return
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            obj[key] = os.path.normpath(os.path.join(base, value))  # as Go's filepath.Join


# --- resolve -----------------------------------------------------------------------------------


def resolve(
    kubeconfig: str | None,
    context: str | None,
    request_timeout: str | None,
    env: Mapping[str, str] = os.environ,
    *,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> Connection:
    """Pick the kubeconfig files, the context, its server and namespace. Reads files, no network."""
    timeout = parse_duration(request_timeout) if request_timeout is not None else None
    paths = _kubeconfig_paths(kubeconfig, env)
    # kubectl falls back to in-cluster only when no kubeconfig exists; an explicit --kubeconfig must exist.
    if kubeconfig is None and not any(os.path.exists(p) for p in paths) and env.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster(context, timeout, env, Path(service_account_dir), searched=", ".join(paths))
    config, where = merged_kubeconfig(paths)
    name = context or config.get("current-context")
    if not name:
        raise InputError(f"no current context is set in {where}: pass --context")
    ctx = _named(config, "contexts", "context", name)
    if ctx is None:
        raise InputError(f'context "{name}" not found in {where}')
    cluster = _named(config, "clusters", "cluster", str(ctx.get("cluster") or ""))
    if cluster is None:
        raise InputError(f'context "{name}" in {where}: cluster "{ctx.get("cluster") or ""}" not found')
    if not cluster.get("server"):
        raise InputError(f'context "{name}" in {where}: cluster "{ctx["cluster"]}" has no server')
    user = ctx.get("user")
    if user and _named(config, "users", "user", str(user)) is None:
        raise InputError(f'context "{name}" in {where}: user "{user}" not found')
    namespace = str(ctx["namespace"]) if ctx.get("namespace") else None
    return Connection(name, str(cluster["server"]), namespace, timeout, config, source=where)


def _kubeconfig_paths(kubeconfig: str | None, env: Mapping[str, str]) -> list[str]:
    if kubeconfig is not None:
        return [kubeconfig]  # one file, no merging, as in kubectl
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return list(dict.fromkeys(listed))  # kubectl drops duplicates, keeping the first
    home = env.get("HOME") or str(Path.home())
    return [os.path.join(home, ".kube", "config")]


def _named(config: dict[str, Any], section: str, key: str, name: str) -> dict[str, Any] | None:
    """The body of the entry called `name` in `section` ({} when the entry has none), or None."""
    for entry in config[section]:
        if entry["name"] == name:
            body = entry.get(key)
            return body if isinstance(body, dict) else {}
    return None


def _in_cluster(
    context: str | None, timeout: float | None, env: Mapping[str, str], sa_dir: Path, searched: str
) -> Connection:
    if context is not None:
        raise InputError(
            f'context "{context}" not found: no kubeconfig found ({searched}), only the in-cluster service account'
        )
    port = env.get("KUBERNETES_SERVICE_PORT")
    if not port:
        raise InputError(
            f"no kubeconfig found ({searched}) and KUBERNETES_SERVICE_PORT is not set for in-cluster access"
        )
    for name in ("token", "ca.crt"):
        if not (sa_dir / name).is_file():
            raise InputError(
                f"no kubeconfig found ({searched}) and no in-cluster service account: {sa_dir / name} is missing"
            )
    return Connection(
        context=IN_CLUSTER,
        server=f"https://{_join_host_port(env['KUBERNETES_SERVICE_HOST'], port)}",
        namespace=env.get("POD_NAMESPACE") or _read_text(sa_dir / "namespace"),  # as clientcmd's in-cluster config
        timeout=timeout,
        config={},
        source=f"in-cluster service account {sa_dir}",
        service_account_dir=str(sa_dir),
    )


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


# --- client ------------------------------------------------------------------------------------


def new_client(conn: Connection) -> Any:
    """A kubernetes.client.ApiClient of its own for `conn`: never the global default configuration.
    Create one per thread: exec swaps methods on the client while it runs."""
    import kubernetes.client  # here, not at the top: --help must not import kubernetes
    import kubernetes.config

    loaders: Any = kubernetes.config  # kubernetes.config has no annotations
    cfg = kubernetes.client.Configuration()
    try:
        if conn.service_account_dir is not None:
            _load_in_cluster(loaders, conn.server, Path(conn.service_account_dir), cfg)
        else:
            # Exec-credential plugins in the user entry run here. persist_config=False: never rewrite the files.
            loaders.load_kube_config_from_dict(
                conn.config, context=conn.context, client_configuration=cfg, persist_config=False
            )
    except (loaders.ConfigException, OSError, ValueError) as exc:
        raise InputError(f'loading context "{conn.context}" from {conn.source}: {exc}') from exc
    return kubernetes.client.ApiClient(configuration=cfg)


def _load_in_cluster(loaders: Any, server: str, sa_dir: Path, cfg: Any) -> None:
    url = urlsplit(server)
    # The loader takes host and port from the environment; hand it the ones resolve() already chose.
    environ = {"KUBERNETES_SERVICE_HOST": url.hostname or "", "KUBERNETES_SERVICE_PORT": str(url.port or 443)}
    token, ca = str(sa_dir / "token"), str(sa_dir / "ca.crt")
    # try_refresh_token (the default) rereads the token file every minute: bound tokens rotate.
    loaders.incluster_config.InClusterConfigLoader(token, ca, environ=environ).load_and_set(cfg)
