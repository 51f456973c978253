"""Local backups of what `fix` replaced (adapters.statedir)."""

from __future__ import annotations

from pathlib import Path

from kubectl_multus.adapters import statedir
from kubectl_multus.core.findings import Target


def test_a_file_fix_put_back_is_remembered_as_absent(tmp_path: Path) -> None:
    target = Target("NodeFile", node="node-1", path="/etc/cni/net.d/00-multus.conf")
    statedir.save("sim@h", target, b"", base=tmp_path, absent=True)
    statedir.save("sim@h", target, b"{}", "/etc/cni/net.d/00-multus.conf.kubectl-multus-x.bak", base=tmp_path)
    found = statedir.listing("sim@h", base=tmp_path)
    assert sorted((b.absent, b.original) for b in found) == [(False, b"{}"), (True, b"")]
