"""Take secrets, and on request identities, out of a snapshot before it leaves the cluster.

Pure: snapshot in, new snapshot out (`kubectl multus dump` writes the result with
`kubectl_multus.adapters.dumpwrite`). Two steps:

`strip_secrets` always runs. What a diagnosis needs is where things are and whether they exist,
never a credential, so credentials are replaced by `REDACTED` and the structure around them kept:

- Secret objects are left out; `kubectl.kubernetes.io/last-applied-configuration` annotations are
  dropped (they repeat the spec and may hold secrets).
- env entries whose NAME contains TOKEN, PASSWORD, SECRET or KEY (any case) keep the name, lose the value.
- Everywhere in text (node files, ConfigMap values, logs, every string of every object, node errors):
  PEM private key blocks and JWTs (service-account tokens, `eyJ….eyJ….…`) are replaced (a JWT with
  an `exp` claim by an unsigned stand-in holding that claim alone, so expiry is judged offline); lines
  `token:`, `client-key-data:`, `client-certificate-data:`, `password:`, `client-secret:`,
  `id-token:`, `refresh-token:`, `access-token:` (YAML or JSON) keep the key and lose the value.
- A text that is a kubeconfig (YAML or JSON with `users[].user`) also loses its users' exec args and
  env values and auth-provider config; it is re-emitted only when the line rule above was not enough.
  Servers, CA data, file paths (`tokenFile`, `client-key`) stay.
- ConfigMap `binaryData` values are decoded, scrubbed the same way and encoded again.

`redact_identities` runs on `--redact`; see its docstring for what it replaces.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from kubectl_multus.core.snapshot import NodeFiles, Obj, Snapshot, meta

REDACTED = "REDACTED"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|KEY", re.IGNORECASE)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# What a JWT with an `exp` claim becomes: unsigned, that claim alone (not a secret), so a dump
# is still judged on the token's expiry (M213); `{"alg":"none"}` . `{"exp":N}` . REDACTED.
_NONE_HEADER = "eyJhbGciOiJub25lIn0"
_STAND_IN = re.compile(rf"{_NONE_HEADER}\.eyJleHAiO[A-Za-z0-9_-]*\.{REDACTED}")
# An unterminated block (a truncated file) is replaced up to the end of the text.
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL)
_KEYS = r"token|client-key-data|client-certificate-data|password|client-secret|id-token|refresh-token|access-token"
_KEY_HINT = re.compile(rf"(?<![\w-])(?:{_KEYS})\b", re.IGNORECASE)
# "token": "…"  or  token: "…"  (JSON, or a double-quoted YAML scalar)
_QUOTED = re.compile(rf'(?P<key>(?<![\w-])"?(?:{_KEYS})"?)(?P<sep>[ \t]*:[ \t]*)"(?:[^"\\\n]|\\.)*"', re.IGNORECASE)
# token: abc   - password: 'x'   client-key-data: |   (YAML, one line; block scalars handled by the caller)
_PLAIN = re.compile(
    rf"(?P<lead>[ \t]*(?:-[ \t]+)?(?:{_KEYS})[ \t]*:)[ \t]+(?P<value>[^\s\"#].*?)(?P<cr>\r?)", re.IGNORECASE
)
_BLOCK = re.compile(r"[|>][-+0-9]*(?:[ \t]+#.*)?")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _stand_in(jwt: str) -> str:
    """REDACTED, or for a JWT with an `exp` claim the unsigned stand-in holding only that claim."""
    from kubectl_multus.core.confchecks import jwt_exp

    exp = jwt_exp(jwt)
    if exp is None:
        return REDACTED
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}, separators=(",", ":")).encode())
    return f"{_NONE_HEADER}.{payload.decode().rstrip('=')}.{REDACTED}"


def _stays(value: str) -> bool:
    return value == REDACTED or _STAND_IN.fullmatch(value.strip("'\"")) is not None


def _scrub_key_lines(text: str) -> str:
    """Keep secret keys, replace their values: `token: abc` -> `token: REDACTED`."""
    if not _KEY_HINT.search(text):
        return text
    text = _QUOTED.sub(lambda m: m[0] if _STAND_IN.search(m[0]) else f'{m["key"]}{m["sep"]}"{REDACTED}"', text)
    out: list[str] = []
    block_indent: int | None = None  # inside a block scalar that belongs to a secret key
    for line in text.split("\n"):
        if block_indent is not None:
            if not line.strip() or _indent(line) > block_indent:
                continue
            block_indent = None
        m = _PLAIN.fullmatch(line)
        if m is None or _stays(m["value"]):
            out.append(line)
            continue
        out.append(f"{m['lead']} {REDACTED}{m['cr']}")
        if _BLOCK.fullmatch(m["value"]):
            block_indent = _indent(line)
    return "\n".join(out)


def _yaml() -> Any:
    import yaml  # imported here: --help must not pay for it

    return yaml


def _is_kubeconfig(data: Any) -> bool:
    users = data.get("users") if isinstance(data, dict) else None
    return isinstance(users, list) and any(isinstance(u, dict) and isinstance(u.get("user"), dict) for u in users)


def _scrub_user(user: dict[str, Any]) -> None:
    for key in _KEYS.split("|"):
        if user.get(key) and not _stays(str(user[key])):
            user[key] = REDACTED
    exe = user.get("exec")
    if isinstance(exe, dict):
        if isinstance(exe.get("args"), list):
            exe["args"] = [REDACTED for _ in exe["args"]]
        for item in exe.get("env") or []:
            if isinstance(item, dict) and "value" in item:
                item["value"] = REDACTED
    provider = user.get("auth-provider")
    if isinstance(provider, dict) and isinstance(provider.get("config"), dict):
        provider["config"] = {k: REDACTED for k in provider["config"]}


def _scrub_kubeconfig(text: str) -> str:
    """A kubeconfig keeps its shape; only its users' credentials go."""
    if "users" not in text or "user" not in text:
        return text
    yaml = _yaml()
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return text  # broken: the line rule has done what can be done
    if not _is_kubeconfig(data):
        return text
    scrubbed = copy.deepcopy(data)
    for entry in scrubbed["users"]:
        if isinstance(entry, dict) and isinstance(entry.get("user"), dict):
            _scrub_user(entry["user"])
    if scrubbed == data:
        return text
    if text.lstrip().startswith("{"):
        return json.dumps(scrubbed, indent=2) + "\n"
    return str(yaml.safe_dump(scrubbed, sort_keys=False, default_flow_style=False))


def scrub_text(text: str) -> str:
    """Private keys, JWTs and kubeconfig credentials out of one text."""
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(lambda m: m[0] if _STAND_IN.fullmatch(m[0]) else _stand_in(m[0]), text)
    return _scrub_kubeconfig(_scrub_key_lines(text))


def _scrub_binary(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value
    scrubbed = scrub_text(text)
    return value if scrubbed == text else base64.b64encode(scrubbed.encode("utf-8")).decode("ascii")


def _scrub_env(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, Mapping) and "value" in item and _SECRET_NAME.search(str(item.get("name", ""))):
            item = {**item, "value": REDACTED}
        out.append(item)
    return out


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "annotations" and isinstance(item, Mapping):
                item = {k: v for k, v in item.items() if k != LAST_APPLIED}
            elif key == "env" and isinstance(item, list):
                item = _scrub_env(item)
            elif key == "binaryData" and isinstance(item, Mapping):
                item = {k: _scrub_binary(v) for k, v in item.items()}
            out[key] = _strip(item)
        return out
    if isinstance(value, (list, tuple)):
        return [_strip(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def _strip_objects(objs: Iterable[Obj]) -> tuple[Obj, ...]:
    return tuple(_strip(o) for o in objs if o.get("kind") != "Secret")


def _map_files(files: NodeFiles, text: Callable[[str], str]) -> NodeFiles:
    entries = {
        path: replace(e, content=text(e.content)) if e.kind == "file" and e.content else e
        for path, e in files.entries.items()
    }
    return NodeFiles(entries, files.roots)


def strip_secrets(snapshot: Snapshot) -> Snapshot:
    """The snapshot without credentials (module docstring); runs before every dump is written."""
    return replace(
        snapshot,
        nodes=_strip_objects(snapshot.nodes),
        daemonsets=_strip_objects(snapshot.daemonsets),
        configmaps=_strip_objects(snapshot.configmaps),
        pods=_strip_objects(snapshot.pods),
        others=_strip_objects(snapshot.others),
        workloads=_strip_objects(snapshot.workloads),
        logs={key: scrub_text(text) for key, text in snapshot.logs.items()},
        node_files={name: _map_files(files, scrub_text) for name, files in snapshot.node_files.items()},
        node_errors={name: scrub_text(why) for name, why in snapshot.node_errors.items()},
    )


# --- identities -------------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?P<ip>\d{1,3}(?:\.\d{1,3}){3})(?:/(?P<bits>\d{1,3}))?(?![0-9A-Za-z]|\.\d)")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:])(?P<ip>(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?:/(?P<bits>\d{1,3}))?(?![0-9A-Za-z:]|\.\d)"
)
_V4_BASE = ipaddress.IPv4Address("10.255.0.0")
_V6_BASE = ipaddress.IPv6Address("fd00::")


def _natural(name: str) -> list[Any]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name)]


def node_aliases(snapshot: Snapshot) -> dict[str, str]:
    """Node name -> `node-1`, `node-2` … in (natural) sorted order of the names: every Node object,
    every node with files or an error, every pod's spec.nodeName."""
    names = {meta(n, "name") for n in snapshot.nodes}
    names |= set(snapshot.node_files) | set(snapshot.node_errors)
    names |= {str((p.get("spec") or {}).get("nodeName") or "") for p in snapshot.pods}
    names.discard("")
    return {name: f"node-{i}" for i, name in enumerate(sorted(names, key=_natural), 1)}


def _kept(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast or ip.is_reserved


class _Identities:
    """The one mapping of names and addresses applied to every text of a snapshot."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        alternatives = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
        # Not inside a longer word (`k3s-10`), not a path segment (`/rancher/k3s/`); but at the end of
        # a pod name (`kube-multus-ds-k3s-1`), a URL host (`k3s://k3s-1`), a domain name's host.
        self.name_re = (
            re.compile(rf"(?<![A-Za-z0-9_.])(?<!(?<!/)/)(?:{alternatives})(?![A-Za-z0-9_-])") if self.names else None
        )
        self.addresses: dict[str, str] = {}
        self.seen: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()

    def node(self, name: str) -> str:
        return self.names.get(name, name)

    def _names(self, text: str) -> str:
        return self.name_re.sub(lambda m: self.names[m[0]], text) if self.name_re else text

    @staticmethod
    def _address(m: re.Match[str]) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            ip = ipaddress.ip_address(m["ip"].split("%")[0])
        except ValueError:
            return None
        if _kept(ip):
            return None
        if m["bits"] is not None:
            try:
                if ip == ipaddress.ip_network(f"{ip}/{m['bits']}", strict=False).network_address:
                    return None  # a CIDR (10.42.0.0/16): a range, not a host
            except ValueError:
                pass
        return ip

    def collect(self, text: str) -> str:
        text = self._names(text)
        for regex in (_IPV6, _IPV4):
            for m in regex.finditer(text):
                ip = self._address(m)
                if ip is not None:
                    self.seen.add(ip)
        return text

    def assign(self) -> None:
        v4 = sorted(ip for ip in self.seen if ip.version == 4)
        v6 = sorted(ip for ip in self.seen if ip.version == 6)
        self.addresses = {str(ip): str(_V4_BASE + i) for i, ip in enumerate(v4, 1)}
        self.addresses |= {str(ip): str(_V6_BASE + i) for i, ip in enumerate(v6, 1)}

    def _sub_address(self, m: re.Match[str]) -> str:
        ip = self._address(m)
        if ip is None:
            return m[0]
        bits = f"/{m['bits']}" if m["bits"] is not None else ""
        return self.addresses.get(str(ip), m["ip"]) + bits

    def text(self, text: str) -> str:
        text = self._names(text)
        return _IPV4.sub(self._sub_address, _IPV6.sub(self._sub_address, text))


def _map_value(value: Any, text: Callable[[str], str], node: Callable[[str], str], key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _map_value(v, text, node, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_value(v, text, node) for v in value]
    if isinstance(value, str):
        head, _, last = value.rpartition("/")
        if key == "providerID" and head and node(last) != last:  # gce://project/zone/NAME, kind://docker/kind/NAME
            return text(head) + "/" + node(last)
        return text(value)
    return value


def _map_snapshot(snapshot: Snapshot, text: Callable[[str], str], node: Callable[[str], str]) -> Snapshot:
    def objs(items: tuple[Obj, ...]) -> tuple[Obj, ...]:
        return tuple(_map_value(o, text, node) for o in items)

    return replace(
        snapshot,
        nodes=objs(snapshot.nodes),
        daemonsets=objs(snapshot.daemonsets),
        configmaps=objs(snapshot.configmaps),
        pods=objs(snapshot.pods),
        others=objs(snapshot.others),
        workloads=objs(snapshot.workloads),
        logs={(ns, text(pod), c, prev): text(log) for (ns, pod, c, prev), log in snapshot.logs.items()},
        node_files={node(name): _map_files(files, text) for name, files in snapshot.node_files.items()},
        node_errors={node(name): text(why) for name, why in snapshot.node_errors.items()},
    )


def redact_identities(snapshot: Snapshot) -> Snapshot:
    """Node names and IP addresses replaced, one mapping for the whole snapshot (`--redact`).

    Replaced:
    - node names -> `node-1`, `node-2` … (`node_aliases`): the keys of node_files and node_errors, and
      every occurrence in the string values of objects (metadata.name, spec.nodeName, the
      kubernetes.io/hostname label, pod names that embed a node name, the last segment of
      providerID), in pod names of log keys, in log text, node file contents and node errors.
      An occurrence counts when it is not part of a longer word or name (`k3s-10`, `k3s-agent`)
      and not a path segment, so a node named `k3s` leaves `/var/lib/rancher/k3s` alone (but
      `k3s://k3s` becomes `k3s://node-1`). A name that is an ordinary word (`master`) is replaced
      as a word in free text too.
    - IPv4 addresses -> 10.255.0.1, 10.255.0.2 …, IPv6 -> fd00::1 … (sorted), in the same texts;
      an address with a prefix length keeps it (`192.168.1.7/24` -> `10.255.0.3/24`).

    Kept: host paths and symlink targets (paths are not identities, and diagnosis needs them),
    `.captured` roots, object keys (label and annotation names), namespaces, container names;
    loopback, unspecified (0.0.0.0, ::), link-local (169.254.169.254), multicast and reserved
    addresses; CIDRs whose address is the network's own (10.42.0.0/16, 10.43.0.0/16); MAC
    addresses, hostnames other than node names, cloud instance ids, image names.
    """
    ids = _Identities(node_aliases(snapshot))
    _map_snapshot(snapshot, ids.collect, ids.node)
    ids.assign()
    return _map_snapshot(snapshot, ids.text, ids.node)
