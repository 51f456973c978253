"""Flags the Multus binaries do not define: the process exits before doing anything.

The thin entrypoint parses with pflag (`unknown flag: --x`), the thick daemon with Go's flag
package (`flag provided but not defined: -x`). Both print their usage and exit, so the pod
crash-loops; the fix is to drop the flag, or to use the name or the place it has now.
"""

from __future__ import annotations

import re

from kubectl_multus.core.distros import is_primary_config
from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.install import Install, parse_json_object
from kubectl_multus.core.snapshot import NodeFiles

# thin_entrypoint's flags (multus-cni cmd/thin_entrypoint/main.go, 4.x)
THIN_FLAGS = frozenset(
    {
        "--cni-conf-dir", "--cni-bin-dir", "--multus-bin-file", "--multus-conf-file", "--multus-autoconfig-dir",
        "--multus-master-cni-file-name", "--multus-cni-conf-dir", "--multus-kubeconfig-file-host",
        "--readiness-indicator-file", "--additional-bin-dir", "--multus-log-file", "--multus-log-level",
        "--multus-log-to-stderr", "--cni-version", "--force-cni-version", "--skip-tls-verify",
        "--namespace-isolation", "--global-namespaces", "--override-network-name", "--cleanup-config-on-exit",
        "--skip-config-watch", "--rename-conf-file", "--skip-multus-binary-copy", "--help", "-h",
    }
)  # fmt: skip
# Names a chart or an older manifest used for a flag that exists under another name
# (rke2-multus rendered namespace isolation as --cni-namespace-isolation: rancher/rke2-charts#737).
THIN_RENAMED = {"--cni-namespace-isolation": "--namespace-isolation"}
# multus-daemon 4.x takes its settings from daemon-config.json; only these are flags.
THICK_FLAGS = frozenset({"-config", "--config", "-version", "--version", "-help", "--help", "-h"})
# multus-daemon 3.9 took settings as flags; in 4.x they are daemon-config.json keys.
THICK_LEGACY = {
    "cni-version": "cniVersion",
    "cni-config-dir": "cniConfigDir",
    "multus-autoconfig-dir": "multusAutoconfigDir",
    "multus-conf-file": "multusConfigFile",
    "multus-master-cni-file-name": "multusMasterCNI",
    "multus-kubeconfig-file-host": "kubeconfig",
    "multus-log-level": "logLevel",
    "multus-log-to-stderr": "logToStderr",
    "multus-log-file": "logFile",
    "readiness-indicator-file": "readinessindicatorfile",
    "cni-bin-dir": "binDir",
    "namespace-isolation": "namespaceIsolation",
    "global-namespaces": "globalNamespaces",
}


def _given(inst: Install) -> list[tuple[str, str | None]]:
    """(flag, value) for each flag word after the binary, as written."""
    out: list[tuple[str, str | None]] = []
    words = list(inst.args)
    for i, word in enumerate(words):
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name, eq, value = word.partition("=")
        if not eq and i + 1 < len(words) and not words[i + 1].startswith("-"):
            out.append((name, words[i + 1]))
        else:
            out.append((name, value if eq else None))
    return out


def check_flags(inst: Install, config_target: Target | None) -> list[Finding]:
    if inst.shell_wrapped or (inst.mode == "thin" and not inst.entrypoint.endswith("thin_entrypoint")):
        return []  # flags inside a shell string are not ours to parse; legacy entrypoint.sh has its own set
    ds = Target("DaemonSet", inst.namespace, inst.name)
    known = THIN_FLAGS if inst.mode == "thin" else THICK_FLAGS
    findings = []
    for name, value in _given(inst):
        if name in known:
            continue
        changes = [Change(ds, f"ds.arg.{name}", None, value, inst.container_name)]
        how = f"remove {name}"
        renamed = THIN_RENAMED.get(name) if inst.mode == "thin" else None
        legacy = THICK_LEGACY.get(name.lstrip("-")) if inst.mode == "thick" else None
        if renamed:
            changes.append(Change(ds, f"ds.arg.{renamed}", value or "true", None, inst.container_name))
            how = f"use {renamed}{'=' + value if value else ''} instead of {name}"
        elif legacy and config_target is not None and value is not None:
            setting: str | bool = value.lower() == "true" if value.lower() in ("true", "false") else value
            changes.append(
                Change(
                    config_target,
                    f"daemon_config.{legacy}",
                    str(setting).lower() if isinstance(setting, bool) else setting,
                    None,
                )
            )
            how = f"remove {name}; multus-daemon 4 reads it from daemon-config.json as {legacy}"
        message = (
            f"{inst.entrypoint} does not define {name}: it prints "
            + (f"'unknown flag: {name}'" if inst.mode == "thin" else f"'flag provided but not defined: {name}'")
            + " and its usage, and exits before doing anything"
        )
        findings.append(
            Finding(
                "M115",
                Severity.ERROR,
                message,
                object=inst.ref,
                field=f"container {inst.container_name} arg {name}",
                current=f"{name}={value}" if value is not None else name,
                remediation=how,
                changes=tuple(changes),
            )
        )
    return findings


def check_cni_version(inst: Install, node: str, conf_dir: str, files: NodeFiles | None, logs: str) -> list[Finding]:
    """thin_entrypoint refuses to write 00-multus.conf when --cni-version differs from the
    primary config's cniVersion (unless --force-cni-version): `failed to create multus config:
    Multus cni version is "0.3.1" while master plugin cni version is "0.4.0"`."""
    if inst.mode != "thin" or not inst.entrypoint.endswith("thin_entrypoint"):
        return []
    wanted = inst.flag("--cni-version")
    if not wanted or (inst.flag("--force-cni-version") or "false").lower() == "true":
        return []
    primary_version: str | None = None
    where = ""
    if files is not None:
        names = sorted(n for n in files.listdir(conf_dir) or [] if is_primary_config(n))
        if names:
            where = f"{conf_dir}/{names[0]}"
            data, _ = parse_json_object(files.read(where) or "")
            primary_version = str(data.get("cniVersion")) if data and data.get("cniVersion") else None
    match = re.search(r'Multus cni version is "([^"]+)" while master plugin cni version is "([^"]+)"', logs)
    if primary_version is None and match:
        primary_version, where = match.group(2), "the primary config (from the log)"
    if primary_version is None or primary_version == wanted:
        return []
    ds = Target("DaemonSet", inst.namespace, inst.name)
    evidence = (f"{where}: cniVersion {primary_version}",) + ((f"log: {match.group(0)}",) if match else ())
    return [
        Finding(
            "M116",
            Severity.ERROR,
            f"--cni-version={wanted} differs from the primary config's cniVersion {primary_version}: the thin "
            "entrypoint refuses to write 00-multus.conf, so pods start without Multus",
            object=inst.ref,
            field=f"container {inst.container_name} arg --cni-version",
            current=wanted,
            expected=None,
            evidence=evidence,
            remediation=f"remove --cni-version (Multus then takes the primary's); or set it to {primary_version}",
            changes=(Change(ds, "ds.arg.--cni-version", None, wanted, inst.container_name),),
        )
    ]
