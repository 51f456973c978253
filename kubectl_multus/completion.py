"""Shell completion through kubectl: `kubectl multus <TAB>` runs `kubectl_complete-multus`.

kubectl (1.26+) looks for an executable named `kubectl_complete-multus` on PATH and runs it with the
words typed after `kubectl multus` plus the word being completed (possibly ""). It expects Cobra's
answer: one candidate per line, `value<TAB>description`, then `:<directive>`. This module gives
Typer's completion machinery that output format (a completion class named "kubectl"), completes
--context, --node and namespaces from kubectl itself, and leaves paths to the shell.

Two ways in, both ending in `main()` here: the `kubectl_complete-multus` console script of a pip
install, and the version-independent shim in the krew archive (`scripts/kubectl_complete-multus`),
which runs `kubectl-multus` with `_KUBECTL_MULTUS_COMPLETE=complete_kubectl` (see `__main__.py`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

try:  # typer 0.26+ vendors Click; older typer uses Click itself
    from typer._click import shell_completion
    from typer._click.core import Context, Parameter
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import shell_completion  # type: ignore[no-redef]
    from click.core import Context, Parameter  # type: ignore[assignment]

# The variable Typer reads to switch into completion; `run()` in cli.py passes the same name.
COMPLETE_VAR = "_KUBECTL_MULTUS_COMPLETE"
INSTRUCTION = "complete_kubectl"  # Typer's "<instruction>_<shell>": complete, with the class below

# Cobra's ShellCompDirective values (spf13/cobra completions.go), which kubectl passes to the shell.
FILES = 0  # default: the shell completes file names when we offer nothing
NO_FILES = 4
DIRS = 16  # only directories

# Values that need a file or directory name: the shell completes those, we offer nothing.
PATH_PARAMS = {"kubeconfig": FILES, "from_dump": DIRS, "directory": DIRS}
STATIC = {"helpers": ("auto", "always", "never")}
KUBECTL_TIMEOUT = 5.0  # seconds: a TAB that hangs is worse than no candidates


def _kubectl(args: Sequence[str], ctx: Context, *, connect: bool = True) -> list[str]:
    """Names kubectl prints for `args` (`-o name`), with the kubeconfig and context typed so far."""
    kubectl = os.environ.get("KUBECTL_PATH") or shutil.which("kubectl")
    if not kubectl:
        return []
    given = _given(ctx)
    cmd = [kubectl, *args]
    if given.get("kubeconfig"):
        cmd += ["--kubeconfig", str(given["kubeconfig"])]
    if connect:
        if given.get("context"):
            cmd += ["--context", str(given["context"])]
        cmd += [f"--request-timeout={int(KUBECTL_TIMEOUT)}s"]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT + 1, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [line.strip().rpartition("/")[2] for line in out.stdout.splitlines() if line.strip()]


def _given(ctx: Context) -> dict[str, Any]:
    """Flags typed so far, before or after the command name (the command's win, as in cli.py)."""
    chain: list[Context] = []
    node: Context | None = ctx
    while node is not None:
        chain.append(node)
        node = node.parent
    given: dict[str, Any] = {}
    for c in reversed(chain):
        given.update({k: v for k, v in c.params.items() if v is not None})
    return given


DYNAMIC: dict[str, Callable[[Context], list[str]]] = {
    "context": lambda ctx: _kubectl(["config", "get-contexts", "-o", "name"], ctx, connect=False),
    "node": lambda ctx: _kubectl(["get", "nodes", "-o", "name"], ctx),
    "namespace": lambda ctx: _kubectl(["get", "namespaces", "-o", "name"], ctx),
    "helper_namespace": lambda ctx: _kubectl(["get", "namespaces", "-o", "name"], ctx),
}


class KubectlComplete(shell_completion.ShellComplete):
    """Typer completion in the format kubectl expects from `kubectl_complete-<plugin>`."""

    name = "kubectl"
    source_template = ""  # nothing to source: kubectl's own completion script calls us
    directive = NO_FILES

    def source_vars(self) -> dict[str, Any]:
        return {}

    def get_completion_args(self) -> tuple[list[str], str]:
        words = sys.argv[1:]
        return (words[:-1], words[-1]) if words else ([], "")

    def get_completions(self, args: list[str], incomplete: str) -> list[shell_completion.CompletionItem]:
        if "--version" in args or "-h" in args or "--help" in args:
            return []  # the command line is complete; its eager callbacks would print and exit
        # Click's own resolution (private, but present in every Click 8 and in Typer's copy): which
        # command and which parameter the word being typed belongs to.
        ctx = shell_completion._resolve_context(self.cli, self.ctx_args, self.prog_name, args)
        obj, incomplete = shell_completion._resolve_incomplete(ctx, args, incomplete)
        if isinstance(obj, Parameter) and obj.name in PATH_PARAMS:
            self.directive = PATH_PARAMS[obj.name]
            return []
        if isinstance(obj, Parameter) and (obj.name in DYNAMIC or obj.name in STATIC):
            values = DYNAMIC[obj.name](ctx) if obj.name in DYNAMIC else list(STATIC[obj.name])
            return [shell_completion.CompletionItem(v) for v in values if v.startswith(incomplete)]
        return list(obj.shell_complete(ctx, incomplete))

    def format_completion(self, item: shell_completion.CompletionItem) -> str:
        help_text = (item.help or "").strip().splitlines()
        return f"{item.value}\t{help_text[0]}" if help_text else str(item.value)

    def complete(self) -> str:
        args, incomplete = self.get_completion_args()
        lines = [self.format_completion(item) for item in self.get_completions(args, incomplete)]
        return "\n".join([*lines, f":{self.directive}"])


def register() -> None:
    shell_completion.add_completion_class(KubectlComplete, KubectlComplete.name)


def main() -> None:
    """`kubectl_complete-multus WORD... INCOMPLETE`: the candidates, for kubectl."""
    os.environ[COMPLETE_VAR] = INSTRUCTION
    register()
    from kubectl_multus.cli import run

    run()
