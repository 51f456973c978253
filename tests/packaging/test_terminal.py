"""Colours only on a terminal and never with NO_COLOR; --help is plain text, as kubectl's is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.packaging.conftest import MOTIVATING
from tests.packaging.test_completion import installed

ESC = "\x1b["

pty = pytest.importorskip("pty", reason="needs a pseudo-terminal (POSIX)")


def on_terminal(args: list[str], **env: str) -> str:
    """What the command writes when stdout and stderr are a terminal."""
    leader, follower = pty.openpty()
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.Popen(
        args, stdin=follower, stdout=follower, stderr=follower, env={**base, "TERM": "xterm", **env}
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.wait(timeout=30)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def plugin() -> str:
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("no pseudo-terminals")
    return installed("kubectl-multus")


@pytest.mark.parametrize("args", [["--help"], ["diagnose", "--help"], ["fix", "--help"]], ids=" ".join)
def test_help_is_plain_even_on_a_terminal(plugin: str, args: list[str]) -> None:
    out = on_terminal([plugin, *args])
    assert "Usage: kubectl multus" in out and ESC not in out


def test_output_is_coloured_only_on_a_terminal_without_no_color(plugin: str) -> None:
    args = [plugin, "diagnose", "--from-dump", str(MOTIVATING)]
    assert ESC in on_terminal(args)
    assert ESC not in on_terminal(args, NO_COLOR="1")
    piped = subprocess.run(args, capture_output=True, text=True, check=False, env={**os.environ, "TERM": "xterm"})
    assert ESC not in piped.stdout + piped.stderr and "prefix applied twice" in piped.stdout
