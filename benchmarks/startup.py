#!/usr/bin/env python3
"""Start-up cost of the plugin: `kubectl-multus --help` against `kubectl version --client`.

Both commands (and `kubectl-multus --version`) run N times each, interleaved in one run so
that both see the same machine load; the wall time of every run is taken around the whole
process (fork, interpreter start, imports, output, exit). A separate check, run in the
plugin's own interpreter, shows that `--help` imports no `kubernetes` module: the client is
only imported by the commands that talk to a cluster.

This is a script, not a test: it reports figures and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Run in the plugin's interpreter: call its entry point with stdout captured, then report which
# heavy modules the process had loaded. No `-X importtime`: sys.modules is the whole answer.
IMPORT_CHECK = r"""
import contextlib, io, json, sys
sys.argv = ["kubectl-multus", *sys.argv[1:]]
from kubectl_multus.__main__ import main
out = io.StringIO()
code = 0
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
tops = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"code": code, "printed": len(out.getvalue()), "modules": len(sys.modules), "tops": tops}))
"""
PYTHON_FLOOR = "python -S -c pass"
CLIENT_APIS = "ApiException, AppsV1Api, CoreV1Api, CustomObjectsApi"
CLIENT_IMPORT = "python -c 'from kubernetes.client import …Api'"
HEAVY = ("kubernetes", "urllib3", "yaml", "websocket", "requests", "google", "oauthlib")


def source_version() -> str:
    """The commit of the plugin's source tree, and whether kubectl_multus/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "kubectl_multus"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes in kubectl_multus/" if dirty else head


def default_exe() -> Path:
    """The kubectl-multus installed next to the interpreter running this script."""
    return Path(sys.executable).parent / "kubectl-multus"


def interpreter_of(exe: Path) -> str:
    """The Python a console script runs with (its shebang), or this one."""
    try:
        first = exe.read_bytes().split(b"\n", 1)[0].decode()
    except OSError:
        return sys.executable
    if first.startswith("#!") and "python" in first:
        parts = first[2:].split()
        if parts and Path(parts[0]).name == "env" and len(parts) > 1:
            return shutil.which(parts[1]) or sys.executable
        if parts:
            return parts[0]
    return sys.executable


def once(argv: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    ms = (time.perf_counter() - t0) * 1000.0
    return ms, done.returncode, done.stdout.decode(errors="replace")


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=10, method="inclusive")[-1]


def import_check(python: str, args: list[str]) -> dict[str, object]:
    done = subprocess.run([python, "-c", IMPORT_CHECK, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"import check failed ({done.returncode}): {done.stderr.strip()}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument(
        "--exe", type=Path, default=None, help="the kubectl-multus to time (default: the one next to this Python)"
    )
    parser.add_argument("--kubectl", default=shutil.which("kubectl") or "kubectl", help="the kubectl to compare with")
    parser.add_argument(
        "--no-extra",
        action="store_true",
        help="leave out the two reference rows (bare interpreter, importing the kubernetes client APIs)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each command first (default 1)")
    args = parser.parse_args(argv)
    exe: Path = args.exe or default_exe()
    if not exe.exists():
        parser.error(f"{exe}: not found (pass --exe)")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    python = interpreter_of(exe)
    commands = {
        "kubectl-multus --help": [str(exe), "--help"],
        "kubectl-multus --version": [str(exe), "--version"],
        "kubectl version --client": [args.kubectl, "version", "--client"],
    }
    if not args.no_extra:
        # For reference: the interpreter alone, and what every live command adds on top of --help
        # (kubectl_multus/adapters/live.py:read imports these four from the kubernetes client).
        commands[PYTHON_FLOOR] = [python, "-S", "-c", "pass"]
        commands[CLIENT_IMPORT] = [python, "-c", f"from kubernetes.client import {CLIENT_APIS}"]
    for _ in range(args.warmup):
        for argv_ in commands.values():
            once(argv_)
    times: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, set[int]] = {name: set() for name in commands}
    outputs: dict[str, str] = {}
    for _ in range(args.runs):  # interleaved: every round runs each command once
        for name, argv_ in commands.items():
            ms, rc, out = once(argv_)
            times[name].append(ms)
            codes[name].add(rc)
            outputs[name] = out

    versions = subprocess.run(
        [python, "-c", "import kubernetes, platform; print(kubernetes.__version__, platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    help_check = import_check(python, ["--help"])
    heavy = [m for m in HEAVY if m in help_check["tops"]]  # type: ignore[operator]

    print(f"# start-up, {args.runs} interleaved runs each ({time.strftime('%Y-%m-%d')})")
    print()
    print(f"- machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"- plugin: `{exe}` ({outputs['kubectl-multus --version'].strip()}, source {source_version()})")
    print(f"- interpreter: `{python}`")
    if len(versions) == 2:
        print(f"- Python {versions[1]}, kubernetes client {versions[0]}")
    kubectl_version = outputs["kubectl version --client"].strip().splitlines()
    print(f"- kubectl: `{args.kubectl}` ({kubectl_version[0] if kubectl_version else '?'})")
    print()
    print("| command | runs | exit | median ms | p90 ms | min ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, values in times.items():
        rc = ",".join(str(c) for c in sorted(codes[name]))
        print(
            f"| `{name}` | {len(values)} | {rc} | {statistics.median(values):.1f} | {p90(values):.1f} "
            f"| {min(values):.1f} | {max(values):.1f} |"
        )
    base = statistics.median(times["kubectl version --client"])
    ratio = statistics.median(times["kubectl-multus --help"]) / base if base else float("nan")
    print()
    print(f"`--help` median is {ratio:.2f}x `kubectl version --client`.")
    print()
    verdict = "no" if "kubernetes" not in heavy else "YES"
    print(
        f"Imports of `--help` (in `{python}`): {help_check['modules']} modules loaded; "
        f"`kubernetes` imported: **{verdict}**; heavy packages loaded: {', '.join(heavy) or 'none'}."
    )
    if CLIENT_IMPORT in times:
        print()
        print(
            f"`{CLIENT_IMPORT}` imports `{CLIENT_APIS}`, as every live command does after start-up: "
            "the fixed cost a `diagnose` against a cluster pays before its first request."
        )
    failed = any(codes[name] != {0} for name in commands) or "kubernetes" in heavy
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
