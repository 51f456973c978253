"""The observed runs of the real Multus (`shared/fixtures/observed/`), and how to stage them:
the node each ran on, and how to read what happened on it afterwards."""

from __future__ import annotations

import json
import os
import re
from calendar import timegm
from pathlib import Path
from time import strptime
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("KUBECTL_MULTUS_SHARED", REPO.parent / "shared")) / "fixtures"
OBSERVED = sorted((SHARED / "observed").glob("*.yaml"))
START = 1_796_000_000.0
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) ")
K3S_BIN = "/var/lib/rancher/k3s/data/cni"
# The primary CNI config on every observed node, as the delegates in `multus_written` show it.
FLANNEL = {
    "name": "cbr0",
    "cniVersion": "1.0.0",
    "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "forceAddress": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def write(root: Path, path: str, text: str) -> Path:
    real = root / path.lstrip("/")
    real.parent.mkdir(parents=True, exist_ok=True)
    real.write_text(text)
    return real


def make_node(
    root: Path, distribution: str, conf_dir: str, before: dict[str, str] | None = None, *, primary_plugins: bool = False
) -> Path:
    """The node an observed run had. `primary_plugins` adds flannel's binaries to the runtime's bin
    dir, as a node whose primary network works has them (the fixtures list only what Multus touched)."""
    write(root, f"{conf_dir}/10-flannel.conflist", json.dumps(FLANNEL, indent=2))
    if distribution == "k3s":
        (root / K3S_BIN.lstrip("/")).mkdir(parents=True)
    if primary_plugins:
        for plugin in ("flannel", "bridge", "host-local", "portmap", "loopback"):
            write(root, f"{K3S_BIN if distribution == 'k3s' else '/opt/cni/bin'}/{plugin}", "")
    for path, text in (before or {}).items():
        write(root, path, text)
    return root


SKELETON = {"/etc/", "/run/", "/tmp/", "/usr/", "/var/"}  # what simcluster gives every node


def host_listing(root: Path) -> set[str]:
    """Files, and empty directories with a trailing slash, as absolute node paths (leaving out
    the empty top-level dirs every simulated node starts with: the fixtures list what Multus
    touched, not the whole root filesystem)."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = "/" + os.path.relpath(dirpath, root).removeprefix(".").lstrip("/")
        found.update(os.path.join(rel, name) for name in filenames)
        if dirpath != str(root) and not dirnames and not filenames:
            found.add(rel.rstrip("/") + "/")
    return found - SKELETON


def strip(line: str) -> str:
    return STAMP.sub("", line)


def span(lines: list[str]) -> float:
    """Seconds between the first and the last timestamped line."""
    times = [timegm(strptime(m[1], "%Y-%m-%dT%H:%M:%SZ")) for m in map(STAMP.match, lines) if m]
    return float(times[-1] - times[0]) if times else 0.0


def observed_params() -> list[Any]:
    if not OBSERVED:
        reason = f"observed fixtures not found under {SHARED} (CI always has them; set KUBECTL_MULTUS_SHARED)"
        return [pytest.param(None, id="observed-missing", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=p.stem) for p in OBSERVED]
