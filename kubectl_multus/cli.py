"""The command line: flags -> source -> core -> render -> exit status. Nothing else lives here."""

from __future__ import annotations

import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer

from kubectl_multus import __version__
from kubectl_multus.errors import ExitStatus, MultusError, NotFoundError, Refused

if TYPE_CHECKING:
    from kubectl_multus.core.diagnose import Report
    from kubectl_multus.core.snapshot import Snapshot

PROG = "kubectl multus"
app = typer.Typer(
    name=PROG,
    help="Diagnose and fix Multus CNI installs: paths inside the container vs on the node, thin vs thick.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help and plain usage errors, like kubectl's
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Output(str, Enum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"


# Shared flags, declared on every command so they work before or after it, as kubectl users type them.
FromDump = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional on Python 3.9 syntax paths
    typer.Option("--from-dump", metavar="DIR", help="Read a cluster snapshot from DIR (see docs/dump-format.md)."),
]
Namespace = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("-n", "--namespace", help="Look for Multus only in this namespace (default: all)."),
]
OutputOpt = Annotated[Optional[Output], typer.Option("-o", "--output", help="Output format [default: table].")]  # noqa: UP045
NodeOpt = Annotated[Optional[str], typer.Option("--node", help="Only this node.")]  # noqa: UP045
Debug = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")]

_debug = False
# Flags given before the command name; a command's own flags win.
_before: dict[str, object] = {}


def _fail(exc: BaseException) -> NoReturn:
    if _debug:
        raise exc
    status = exc.status if isinstance(exc, MultusError) else ExitStatus.CANNOT_CHECK
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    typer.echo(f"kubectl multus: error: {message}", err=True)
    raise typer.Exit(int(status))


def _snapshot(from_dump: str | None) -> Snapshot:
    if not from_dump:
        raise MultusError(
            "no cluster source: this version reads cluster snapshots only; pass --from-dump DIR "
            "(try: kubectl multus diagnose --from-dump examples/k3s-thin-doubled-prefix)"
        )
    from kubectl_multus.adapters import dumpdir

    return dumpdir.load(from_dump)


def _report(snapshot: Snapshot, namespace: str | None, node: str | None) -> Report:
    from kubectl_multus.core.diagnose import MultusNotFound, NothingToCheck, diagnose

    try:
        report = diagnose(snapshot, namespace)
    except MultusNotFound as exc:
        raise NotFoundError(str(exc)) from exc
    except NothingToCheck as exc:
        raise MultusError(str(exc)) from exc
    if node is not None:
        known = sorted({n.name for i in report.installs for n in i.nodes})
        if node not in known:
            raise NotFoundError(f"node {node} not found; Multus runs on: {', '.join(known) or 'no node'}")
    return report


def _status(report: Report) -> ExitStatus:
    return ExitStatus.OK if report.healthy else ExitStatus.PROBLEMS


def _only_node(report: Report, node: str | None) -> Report:
    if node is None:
        return report
    from dataclasses import replace

    findings = tuple(f for f in report.findings if not f.nodes or node in f.nodes)
    installs = tuple(replace(i, nodes=tuple(n for n in i.nodes if n.name == node)) for i in report.installs)
    return replace(report, installs=installs, findings=findings)


def _flags(
    from_dump: str | None, namespace: str | None, node: str | None, output: Output | None
) -> tuple[str | None, str | None, str | None, Output]:
    """A command's flags, completed by those given before the command name."""
    return (
        from_dump or _before.get("from_dump"),  # type: ignore[return-value]
        namespace or _before.get("namespace"),
        node or _before.get("node"),
        output or _before.get("output") or Output.table,
    )


def _report_command(
    from_dump: str | None, namespace: str | None, node: str | None, output: Output | None, debug: bool, *, paths: bool
) -> NoReturn:
    """diagnose and show-paths: one report, two views."""
    global _debug
    _debug = _debug or debug
    from_dump, namespace, node, output = _flags(from_dump, namespace, node, output)
    from kubectl_multus import render

    try:
        report = _only_node(_report(_snapshot(from_dump), namespace, node), node)
    except MultusError as exc:
        _fail(exc)
    status = _status(report)
    if output in (Output.json, Output.yaml):
        sys.stdout.write(render.dump(render.report_data(report, status, rows=paths), output.value))
    elif paths:
        sys.stdout.write(render.paths_text(report, node, render.use_color()))
    else:
        follow_up = "kubectl multus fix --dry-run" + (f" --from-dump {from_dump}" if from_dump else "")
        sys.stdout.write(render.diagnosis_text(report, render.use_color(), output == Output.wide, follow_up))
    raise typer.Exit(int(status))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kubectl-multus {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    from_dump: FromDump = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: Annotated[Optional[Output], typer.Option("-o", "--output", help="Output format.")] = None,  # noqa: UP045
    debug: Debug = False,
) -> None:
    """Diagnose and fix Multus CNI installs.

    Exit status: 0 healthy (or nothing to fix), 1 problems found, 2 usage error,
    3 could not check (or fix refused), 4 rollback failed, 130 interrupted.
    """
    global _debug
    _debug = debug  # the callback runs first on every invocation: a fresh start
    _before.clear()
    _before.update(
        {k: v for k, v in {"from_dump": from_dump, "namespace": namespace, "node": node, "output": output}.items() if v}
    )


@app.command()
def diagnose(
    from_dump: FromDump = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    debug: Debug = False,
) -> None:
    """Find the Multus install and report every problem, its cause and the exact fix.

    Example: kubectl multus diagnose --from-dump examples/k3s-thin-doubled-prefix
    """
    _report_command(from_dump, namespace, node, output, debug, paths=False)


@app.command("show-paths")
def show_paths(
    from_dump: FromDump = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    debug: Debug = False,
) -> None:
    """For each node, each path Multus uses: world, configured value, host path, expected value, existence.

    Example: kubectl multus show-paths --from-dump examples/k3s-thin-doubled-prefix
    """
    _report_command(from_dump, namespace, node, output, debug, paths=True)


@app.command()
def fix(
    from_dump: FromDump = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    all_nodes: Annotated[bool, typer.Option("--all-nodes", help="Fix node files on every node.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan as diffs; change nothing.")] = False,
    output: OutputOpt = None,
    debug: Debug = False,
) -> None:
    """Compute the corrected config and show it as a diff (--dry-run).

    Exit status with --dry-run: 0 nothing to change, 1 the plan changes something.
    Example: kubectl multus fix --dry-run --from-dump examples/k3s-thin-doubled-prefix
    """
    global _debug
    _debug = _debug or debug
    from kubectl_multus import render
    from kubectl_multus.core.planner import build_plan

    from_dump, namespace, node, output = _flags(from_dump, namespace, node, output)

    try:
        if node and all_nodes:
            raise Refused("--node and --all-nodes exclude each other")
        snapshot = _snapshot(from_dump)
        if not dry_run:
            raise Refused("a snapshot can only be planned, not changed: add --dry-run to see the fix plan")
        report = _report(snapshot, namespace, node)
        plan = build_plan(report, snapshot, node)
    except MultusError as exc:
        _fail(exc)
    status = ExitStatus.PROBLEMS if plan.items or plan.conflicts else ExitStatus.OK
    if output in (Output.json, Output.yaml):
        sys.stdout.write(render.dump(render.plan_data(plan, report, status), output.value))
    else:
        sys.stdout.write(render.plan_text(plan, render.use_color()))
    raise typer.Exit(int(status))


def run() -> None:
    global _debug
    _debug = False
    try:
        app(prog_name=PROG)
    except Exception as exc:  # a bug: still one line, unless --debug asks for the traceback
        if _debug or "--debug" in sys.argv:
            raise
        typer.echo(
            f"kubectl multus: internal error: {type(exc).__name__}: {exc} (rerun with --debug and report it)", err=True
        )
        sys.exit(int(ExitStatus.CANNOT_CHECK))
