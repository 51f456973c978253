"""CNI plugin binaries: which ones Multus, the primary network and each NetworkAttachmentDefinition
run, and whether the directories searched on a node hold them.

A CNI `type` is the name of an executable looked up in a search path; a missing one fails every
pod sandbox that needs it with `failed to find plugin "<type>" in path [<dirs>]`. Multus builds
that path itself: thin Multus searches its conf's `binDir` (`--additional-bin-dir`, default
/opt/cni/bin) and then the runtime's CNI_PATH (multus-cni pkg/multus: `binDirs = [binDir,
CNI_PATH...]`, which is why field reports show `[/opt/cni/bin /var/lib/rancher/k3s/data/cni]`);
the thick daemon runs delegates from its daemon config's `binDir` alone.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kubectl_multus.core.distros import RuntimeDirs, is_primary_config
from kubectl_multus.core.findings import Finding, Severity
from kubectl_multus.core.install import Install, Setting
from kubectl_multus.core.layout import Layout
from kubectl_multus.core.paths import norm
from kubectl_multus.core.snapshot import NodeFiles, Obj, Snapshot, meta

NAD_KIND = "NetworkAttachmentDefinition"
MULTUS_BINARY = {"thin": "multus", "thick": "multus-shim"}
DEFAULT_BIN_DIR = "/opt/cni/bin"  # Multus's binDir when its conf or daemon config sets none

# containernetworking/plugins (the package to install for these); flannel left it in v1.0 for its own repo.
REFERENCE_PLUGINS = frozenset(("bridge", "ipvlan", "loopback", "macvlan", "ptp", "vlan", "host-device", "dummy",
    "tap", "dhcp", "host-local", "static", "tuning", "portmap", "bandwidth", "sbr", "firewall", "vrf"))  # fmt: skip
# Other plugins users name in NADs, only to suggest a spelling for an unknown type.
OTHER_PLUGINS = ("whereabouts", "sriov", "ib-sriov", "ovn-k8s-cni-overlay", "calico", "calico-ipam", "flannel",
                 "cilium-cni", "multus", "multus-shim", "route-override", "kube-ovn", "antrea")  # fmt: skip

# What the runtime prints (libcni invoke.FindInPath), whoever ran the plugin: verbatim.
FIND_FAILED = re.compile(r'failed to find plugin "(?P<type>[^"]+)" in path \[(?P<path>[^\]]*)\]')


@dataclass(frozen=True)
class Need:
    """One plugin binary something runs: `who` needs `binary` (as its `role`)."""

    binary: str
    who: str  # "NetworkAttachmentDefinition default/macvlan-conf"
    role: str  # "type", "ipam type", "the Multus binary"


def plugin_types(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(binary, role) for every plugin a CNI conf or conflist runs: each plugin's `type`, its
    `ipam.type`, and what flannel delegates to (its `delegate.type`, bridge by default, with
    host-local IPAM: flannel-io/cni-plugin)."""
    raw = config.get("plugins")
    plugins: Sequence[Any] = raw if isinstance(raw, list) else [config]
    out: list[tuple[str, str]] = []

    def add(value: Any, role: str) -> None:
        if isinstance(value, str) and value and (value, role) not in out:
            out.append((value, role))

    for p in plugins:
        if not isinstance(p, Mapping):
            continue
        add(p.get("type"), "type")
        ipam = p.get("ipam")
        if isinstance(ipam, Mapping):
            add(ipam.get("type"), "ipam type")
        if p.get("type") == "flannel":
            delegate = p.get("delegate")
            add((delegate.get("type") if isinstance(delegate, Mapping) else None) or "bridge", "flannel delegate type")
            add("host-local", "flannel delegate ipam type")
    return out


@dataclass(frozen=True)
class NadConfig:
    """What one NetworkAttachmentDefinition's spec.config says."""

    ref: str  # namespace/name
    types: tuple[tuple[str, str], ...] = ()
    error: str | None = None  # why Multus cannot use it
    from_file: bool = False  # empty config: Multus reads a file of that name from its confDir


RESOURCE_NAME = "k8s.v1.cni.cncf.io/resourceName"  # a device plugin resource the NAD's pods request


def schedulable_on(nad: Obj, node: Obj | None) -> bool:
    """Can a pod using this NAD land on the node? A NAD naming a device resource (SR-IOV) only
    where the node offers it; unknown (no allocatable in the snapshot) counts as yes."""
    resource = ((nad.get("metadata") or {}).get("annotations") or {}).get(RESOURCE_NAME)
    allocatable = ((node or {}).get("status") or {}).get("allocatable")
    if not resource or not isinstance(allocatable, Mapping):
        return True
    return str(allocatable.get(resource) or "0") not in ("0", "")


def nad_ref(nad: Obj) -> str:
    return f"{meta(nad, 'namespace', 'default')}/{meta(nad, 'name')}"


def nads(objs: Iterable[Obj]) -> list[Obj]:
    return [o for o in objs if o.get("kind") == NAD_KIND]


def nad_config(nad: Obj) -> NadConfig:
    ref = nad_ref(nad)
    raw = (nad.get("spec") or {}).get("config")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return NadConfig(ref, from_file=True)
    if not isinstance(raw, str):
        return NadConfig(ref, error=f"spec.config is a {type(raw).__name__}, not a string holding JSON")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return NadConfig(ref, error=f"spec.config is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return NadConfig(ref, error=f"spec.config is JSON but not an object ({type(data).__name__})")
    if "plugins" in data:
        plugins = data["plugins"]
        if not isinstance(plugins, list) or not plugins:
            return NadConfig(ref, error="spec.config is a conflist whose plugins is not a non-empty list")
        untyped = [i for i, p in enumerate(plugins) if not isinstance(p, dict) or not p.get("type")]
        if untyped:
            return NadConfig(ref, error=f"spec.config plugins[{untyped[0]}] has no type")
    elif not data.get("type"):
        return NadConfig(ref, error='spec.config has no "type" (nor a "plugins" list)')
    return NadConfig(ref, tuple(plugin_types(data)))


def search_path(mode: str, bin_dir: str, runtime_bin_dirs: Sequence[str], additional: str | None) -> tuple[str, ...]:
    """The dirs Multus looks for delegate plugins in, after the layout fixes (module docstring).
    `bin_dir` is the runtime bin dir this install uses, where thick's binDir must point."""
    if mode == "thick":
        return (bin_dir,)
    return tuple(dict.fromkeys(norm(d) for d in (additional or DEFAULT_BIN_DIR, bin_dir, *runtime_bin_dirs)))


def _suggest(binary: str, present: Iterable[str]) -> str:
    close = difflib.get_close_matches(binary, sorted({*REFERENCE_PLUGINS, *OTHER_PLUGINS, *present}), n=1)
    return f" (did you mean {close[0]}?)" if close and close[0] != binary else ""


def _remedy(binary: str, install_dir: str, multus: bool, who: str) -> str:
    target = f"{install_dir}/{binary}"
    if multus:
        return (
            f"the Multus pod copies {binary} to {target} when it starts: restart the Multus pod on each node "
            f"listed, then check that {target} exists"
        )
    if binary in REFERENCE_PLUGINS:
        source = "from a containernetworking/plugins release (github.com/containernetworking/plugins/releases)"
    else:
        source = f"from the project that provides the {binary} plugin, or fix the type in {who}"
    return f"install {binary} as {target} on every node listed, {source} (kubectl multus does not install binaries)"


def missing_binaries(
    needs: Sequence[Need],
    files: NodeFiles | None,
    searched: Sequence[str],
    install_dir: str,
    multus_binary: str,
) -> list[Finding]:
    """One M401 per binary that no searched dir holds. Nothing when the install dir could not be
    listed: a binary we did not see is unknown, not missing; when only another searched dir could
    not be listed, a warning that says which one to check by hand."""
    if files is None:
        return []
    listings = {d: files.listdir(d) for d in searched}
    if listings.get(install_dir, files.listdir(install_dir)) is None:
        return []
    unknown = [d for d, listing in listings.items() if listing is None]
    present = {name for listing in listings.values() for name in listing or []}
    by_binary: dict[str, list[Need]] = {}
    for need in needs:
        if need.binary not in present:
            by_binary.setdefault(need.binary, []).append(need)
    path = " ".join(searched)
    out = []
    for binary, wanting in sorted(by_binary.items()):
        whos = list(dict.fromkeys(n.who for n in wanting))
        listed = tuple(
            f"host {d}: {', '.join(listing) or 'empty or absent'}" if listing is not None
            else f"host {d}: not captured, check by hand (ls {d}/{binary})"
            for d, listing in listings.items()
        )  # fmt: skip
        read = [d for d in searched if d not in unknown]
        message = f"no CNI plugin binary {binary} in {', '.join(read)}{_suggest(binary, present)}"
        if unknown:
            message += f", and {', '.join(unknown)} could not be read: check there by hand. If it is not there either,"
        else:
            message += ":"
        message += f' pod sandboxes that need it fail with: failed to find plugin "{binary}" in path [{path}]'
        out.append(
            Finding(
                "M401",
                Severity.WARNING if unknown else Severity.ERROR,
                message,
                object=", ".join(whos),
                field=f"plugin {binary}",
                expected=f"{install_dir}/{binary}",
                evidence=(*(f"{n.who}: {n.role} {binary}" for n in wanting), *listed),
                remediation=_remedy(binary, install_dir, binary == multus_binary, whos[0]),
            )
        )
    return out


@dataclass(frozen=True)
class Binaries:
    """One node's plugin binary check: what is missing, and where Multus searched and installs."""

    missing: tuple[Finding, ...]
    files: NodeFiles | None
    searched: tuple[str, ...]  # Multus's search path for delegates (after the layout fixes)
    install_dir: str  # where a missing plugin goes: the runtime bin dir this install uses
    multus_binary: str
    bin_volume_field: str = ""  # "volume cnibin hostPath" when a finding on it explains a missing Multus binary


def _primary(files: NodeFiles, conf_dir: str) -> tuple[str, Mapping[str, Any]] | None:
    """The primary network config Multus delegates to: the first by name in the conf dir."""
    for name in sorted(files.listdir(conf_dir) or []):
        if is_primary_config(name):
            text = files.read(f"{conf_dir}/{name}")
            try:
                data = json.loads(text) if text else None
            except ValueError:
                return None
            return (f"{conf_dir}/{name}", data) if isinstance(data, dict) else None
    return None


def _conf_bin_dir(files: NodeFiles | None, conf_dir: str) -> str | None:
    """The `binDir` of the 00-multus.conf(list) the runtime loads, when it sets one: what thin Multus
    really searches first (a user-supplied conf file may set it; the entrypoint only from --additional-bin-dir)."""
    if files is None:
        return None
    for name in sorted(files.listdir(conf_dir) or []):
        if name.startswith("00-multus.conf"):
            try:
                data = json.loads(files.read(f"{conf_dir}/{name}") or "null")
            except ValueError:
                return None
            if not isinstance(data, dict):
                return None
            plugins = data.get("plugins")
            first = plugins[0] if isinstance(plugins, list) and plugins and isinstance(plugins[0], dict) else data
            value = first.get("binDir")
            return value if isinstance(value, str) and value.startswith("/") else None
    return None


def plugin_needs(
    snapshot: Snapshot,
    inst: Install,
    dirs: RuntimeDirs,
    files: NodeFiles | None,
    layout: Layout | None,
    settings: Mapping[str, Setting],
    pod_ok: bool | None,
    node: Obj | None = None,
) -> Binaries:
    """Check the binaries of the primary config and every NetworkAttachmentDefinition against Multus's
    search path on this node, and the Multus binary against the runtime's bin dirs."""
    install_dir = layout.bin_dir if layout is not None else dirs.bin_dir
    additional = settings.get("--additional-bin-dir")
    bin_dir = _conf_bin_dir(files, dirs.conf_dir) or (additional.effective if additional else None)
    searched = search_path(inst.mode, install_dir, dirs.bin_dirs, bin_dir)
    multus_binary = MULTUS_BINARY[inst.mode]
    found: list[Finding] = []
    vol = layout.bin_volume if layout is not None else None
    explained_by = ""
    if (
        layout is not None
        and vol is not None
        and any(f.field == f"volume {vol.name} hostPath" for f in layout.findings)
    ):
        explained_by = f"volume {vol.name} hostPath"  # the runtime misses Multus's binary because of that volume
    if files is not None:
        needs: list[Need] = []
        primary = _primary(files, dirs.conf_dir)
        if primary is not None:
            needs += [Need(b, f"primary config {primary[0]}", role) for b, role in plugin_types(primary[1])]
        for nad in nads(snapshot.others):
            if not schedulable_on(nad, node):
                continue
            c = nad_config(nad)
            needs += [Need(b, f"NetworkAttachmentDefinition {c.ref}", role) for b, role in c.types]
        found += missing_binaries(needs, files, searched, install_dir, multus_binary)
        # The Multus binary: only where its pod runs and ready (it copies the binary as it starts) and
        # no finding on the bin dir volume already explains a binary in the wrong place.
        explained = layout is None or bool(explained_by) or any(f.code == "M106" for f in layout.findings)
        if pod_ok and not explained:
            own = [Need(multus_binary, inst.ref, "the Multus binary")]
            found += missing_binaries(own, files, dirs.bin_dirs, install_dir, multus_binary)
    return Binaries(tuple(found), files, searched, install_dir, multus_binary, explained_by)


def attach_find_failures(
    findings: list[Finding], hits: Sequence[Any], binaries: Binaries
) -> tuple[list[Finding], list[Any]]:
    """Tie each logged `failed to find plugin "X" in path [...]` to the M401 of X, or make one from the
    log when the node's listing did not show it. Lines about the Multus binary itself are left to the
    bin dir findings (returned with the other hits), unless an M401 explains them."""
    files, searched, install_dir = binaries.files, binaries.searched, binaries.install_dir
    multus_binary = binaries.multus_binary
    out = list(findings)
    rest = []
    for hit in hits:
        m = FIND_FAILED.search(hit.line)
        if m is None:
            rest.append(hit)
            continue
        binary, path = m.group("type"), m.group("path")
        evidence = f"log ({hit.container}{', previous' if hit.previous else ''}): {hit.line}"
        idx = next((i for i, f in enumerate(out) if f.code == "M401" and f.field == f"plugin {binary}"), None)
        if idx is None and binary == multus_binary and binaries.bin_volume_field:
            idx = next((i for i, f in enumerate(out) if f.field == binaries.bin_volume_field), None)
        if idx is not None:
            out[idx] = replace(out[idx], evidence=(*out[idx].evidence, evidence))
            continue
        if binary == multus_binary:
            rest.append(hit)
            continue
        if files is not None and any(binary in (files.listdir(d) or []) for d in searched):
            continue  # installed since the log line was written: nothing left to fix
        out.append(
            Finding(
                "M401",
                Severity.ERROR,
                f"no CNI plugin binary {binary} in {', '.join(path.split())} (from the log): pod sandboxes that need "
                f'it fail with: failed to find plugin "{binary}" in path [{path}]',
                field=f"plugin {binary}",
                expected=f"{install_dir}/{binary}",
                evidence=(evidence,),
                remediation=_remedy(binary, install_dir, False, "the NetworkAttachmentDefinition that names it"),
            )
        )
    return out, rest
