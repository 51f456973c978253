"""The command line: flags -> source -> core -> render -> exit status. Nothing else lives here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer

from kubectl_multus import __version__
from kubectl_multus.errors import ExitStatus, MultusError, NotFoundError, Refused

if TYPE_CHECKING:
    from kubectl_multus.adapters import live as live_mod
    from kubectl_multus.adapters.helperpod import HelperPods
    from kubectl_multus.adapters.kubeconn import Connection
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


# Shared flags, declared on every command so they work before or after it, as kubectl users
# type them. Each stores its value as it is parsed: the app callback's first, then the command's,
# so a flag after the command name wins.
_given: dict[str, object] = {}


def _keep(name: str) -> Callable[[object], object]:
    def store(value: object) -> object:
        if value is not None and value is not False:
            _given[name] = value
        return value

    return store


def _opt(name: str, *decls: str, **kw: Any) -> Any:
    return typer.Option(*decls, callback=_keep(name), **kw)


FromDump = Annotated[
    Optional[str],  # noqa: UP045 - typer reads Optional
    _opt(
        "from_dump",
        "--from-dump",
        metavar="DIR",
        help="Read a snapshot from DIR instead of a cluster (see docs/dump-format.md).",
    ),
]
Namespace = Annotated[
    str | None,
    _opt(
        "namespace",
        "-n",
        "--namespace",
        metavar="NAMESPACE",
        help="Look for Multus only in this namespace (default: all).",
    ),
]
OutputOpt = Annotated[Optional[Output], _opt("output", "-o", "--output", help="Output format [default: table].")]  # noqa: UP045
NodeOpt = Annotated[Optional[str], _opt("node", "--node", metavar="NODE", help="Only this node.")]  # noqa: UP045
Debug = Annotated[bool, _opt("debug", "--debug", help="Show the traceback of an error.")]
Kubeconfig = Annotated[
    str | None,
    _opt(
        "kubeconfig",
        "--kubeconfig",
        metavar="FILE",
        help="Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
    ),
]
Context = Annotated[Optional[str], _opt("context", "--context", metavar="NAME", help="The kubeconfig context to use.")]  # noqa: UP045
RequestTimeout = Annotated[
    str | None,
    _opt(
        "request_timeout",
        "--request-timeout",
        metavar="DURATION",
        help="Give up on one API request after this long, e.g. 30s; 0 waits forever [default: 30s].",
    ),
]
Parallel = Annotated[
    int | None, _opt("parallel", "--parallel", metavar="N", min=1, max=64, help="Nodes read at once [default: 8].")
]
HelperImage = Annotated[
    str | None,
    _opt(
        "helper_image",
        "--helper-image",
        metavar="IMAGE",
        help="Image of the helper pod that reads node files where the Multus pod cannot (needs sleep, tar and find) [default: docker.io/library/busybox:1.36.1].",
    ),
]
HelperNamespace = Annotated[
    str | None,
    _opt(
        "helper_namespace",
        "--helper-namespace",
        metavar="NS",
        help="Namespace for helper pods (needs Pod Security level privileged) [default: Multus's].",
    ),
]
Helpers = Annotated[
    str | None,
    _opt(
        "helpers",
        "--helpers",
        metavar="WHEN",
        help="Helper pods: auto (only where the Multus pod cannot be read), always, never [default: auto].",
    ),
]

_debug = False


def _fail(exc: BaseException) -> NoReturn:
    if _debug:
        raise exc
    status = exc.status if isinstance(exc, MultusError) else ExitStatus.CANNOT_CHECK
    message = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the cause carried
    typer.echo(f"kubectl multus: error: {message}", err=True)
    raise typer.Exit(int(status))


def _flag(name: str, default: str | None = None) -> str | None:
    value = _given.get(name)
    return default if value is None else str(value)


def _output() -> Output:
    value = _given.get("output")
    return value if isinstance(value, Output) else Output.table


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{text}\033[K")
        sys.stderr.flush()


@contextmanager
def _cluster() -> Iterator[tuple[Connection, HelperPods, live_mod.Options]]:
    """The live cluster, with the registry of helper pods this run creates: whatever happens
    inside, every one of them is deleted on the way out."""
    from kubectl_multus.adapters import helperpod, kubeconn, live

    helpers = _flag("helpers", "auto") or "auto"
    if helpers not in ("auto", "always", "never"):
        raise MultusError(f"--helpers must be auto, always or never, not {helpers}")
    conn = kubeconn.resolve(_flag("kubeconfig"), _flag("context"), _flag("request_timeout", "30s"))
    opts = live.Options(
        namespace=_flag("namespace"),
        node=_flag("node"),
        parallel=int(_flag("parallel", "8") or 8),
        helper_image=_flag("helper_image", live.DEFAULT_HELPER_IMAGE) or live.DEFAULT_HELPER_IMAGE,
        helper_namespace=_flag("helper_namespace"),
        helpers=helpers,
    )
    pods = helperpod.HelperPods(lambda: kubeconn.new_client(conn), conn.timeout)
    try:
        yield conn, pods, opts
    finally:
        _progress("")
        left = pods.close()
        if left:
            typer.echo(
                f"kubectl multus: warning: could not delete helper pods {', '.join(left)}; run: kubectl multus cleanup",
                err=True,
            )


def _snapshot() -> Snapshot:
    """The snapshot to judge: a dump, or the live cluster the kubeconfig points at."""
    from_dump = _flag("from_dump")
    if from_dump:
        from kubectl_multus.adapters import dumpdir

        return dumpdir.load(str(from_dump))
    from kubectl_multus.adapters import live

    with _cluster() as (conn, pods, opts):
        return live.read(conn, opts, pods, _progress)


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


def _report_command(*, paths: bool) -> NoReturn:
    """diagnose and show-paths: one report, two views."""
    global _debug
    _debug = bool(_given.get("debug"))
    namespace, node, output = _flag("namespace"), _flag("node"), _output()
    from kubectl_multus import render

    try:
        report = _only_node(_report(_snapshot(), namespace, node), node)
    except MultusError as exc:
        _fail(exc)
    status = _status(report)
    if output in (Output.json, Output.yaml):
        sys.stdout.write(render.dump(render.report_data(report, status, rows=paths), output.value))
    elif paths:
        sys.stdout.write(render.paths_text(report, node, render.use_color()))
    else:
        follow_up = "kubectl multus fix --dry-run" + _source_flags()
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
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeout = None,
    parallel: Parallel = None,
    helper_image: HelperImage = None,
    helper_namespace: HelperNamespace = None,
    helpers: Helpers = None,
    debug: Debug = False,
) -> None:
    """Diagnose and fix Multus CNI installs.

    Reads the cluster your kubeconfig points at (as kubectl does), or a snapshot with --from-dump.
    Exit status: 0 healthy (or nothing to fix), 1 problems found, 2 usage error,
    3 could not check (or fix refused), 4 rollback failed, 130 interrupted.
    """
    # A fresh start on every invocation (tests run many in one process): only the flags given
    # before the command name; the command's own flags are stored as they are parsed next.
    given = {
        "from_dump": from_dump, "kubeconfig": kubeconfig, "context": context, "namespace": namespace, "node": node,
        "output": output, "request_timeout": request_timeout, "parallel": parallel, "helper_image": helper_image,
        "helper_namespace": helper_namespace, "helpers": helpers, "debug": debug,
    }  # fmt: skip
    _given.clear()
    _given.update({k: v for k, v in given.items() if v is not None and v is not False})


@app.command()
def diagnose(
    from_dump: FromDump = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeout = None,
    parallel: Parallel = None,
    helper_image: HelperImage = None,
    helper_namespace: HelperNamespace = None,
    helpers: Helpers = None,
    debug: Debug = False,
) -> None:
    """Find the Multus install and report every problem, its cause and the exact fix.

    Example: kubectl multus diagnose --from-dump examples/k3s-thin-doubled-prefix
    """
    _report_command(paths=False)


@app.command("show-paths")
def show_paths(
    from_dump: FromDump = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeout = None,
    parallel: Parallel = None,
    helper_image: HelperImage = None,
    helper_namespace: HelperNamespace = None,
    helpers: Helpers = None,
    debug: Debug = False,
) -> None:
    """For each node, each path Multus uses: world, configured value, host path, expected value, existence.

    Example: kubectl multus show-paths --node k3s-2
    """
    _report_command(paths=True)


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Timeout = Annotated[
    str,
    typer.Option(
        "--timeout", metavar="DURATION", help="How long to wait for the Multus pods to be Ready after a restart."
    ),
]


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused("not changing anything without a confirmation: run it in a terminal, or pass --yes")
    if not typer.confirm(question, err=True):
        raise Refused("not confirmed; nothing was changed")


def _say(text: str) -> None:
    typer.echo(f"kubectl multus: {text}", err=True)


def _owners(plan: Any, report: Report, snapshot: Snapshot) -> list[tuple[Any, dict[str, str]]]:
    """Warn about objects another tool manages, and print what makes the change last."""
    from kubectl_multus.core.ownership import chart_values, owner, persistent_change

    found = []
    for item in plan.items:
        t = item.target
        if t.kind == "NodeFile":
            continue
        inst = next((i.install for i in report.installs if i.install.namespace == t.namespace), None)
        obj = inst.ds if t.kind == "DaemonSet" and inst else snapshot.configmap(t.namespace, t.name) or {}
        own = owner(obj, snapshot.others)
        if own is None or inst is None:
            continue
        values = chart_values(inst, item.changes)
        _say(
            f"warning: {t} is managed by {own}: a direct change is reverted at its next upgrade or reconcile; to make it last:"
        )
        typer.echo(persistent_change(own, values), err=True)
        found.append((own, values))
    return found


def _source_flags() -> str:
    """The flags that chose the cluster, to repeat in a suggested command."""
    import shlex

    flags = [
        ("--from-dump", "from_dump"),
        ("--kubeconfig", "kubeconfig"),
        ("--context", "context"),
        ("-n", "namespace"),
    ]
    return "".join(f" {flag} {shlex.quote(str(_given[key]))}" for flag, key in flags if _given.get(key))


def _plan_only(dry_run: bool, namespace: str | None, node: str | None, output: Output) -> NoReturn:
    from kubectl_multus import render
    from kubectl_multus.core.planner import build_plan

    if not dry_run:
        raise Refused("a snapshot can only be planned, not changed: add --dry-run, or point at the cluster")
    snapshot = _snapshot()
    report = _report(snapshot, namespace, node)
    plan = build_plan(report, snapshot, node)
    # held back (cluster-wide, under --node) still changes something: the node is not fine as it is
    status = ExitStatus.PROBLEMS if plan.items or plan.conflicts or plan.held_back else ExitStatus.OK
    _owners(plan, report, snapshot)
    if output in (Output.json, Output.yaml):
        sys.stdout.write(render.dump(render.plan_data(plan, report, status), output.value))
    else:
        sys.stdout.write(render.plan_text(plan, render.use_color()))
    raise typer.Exit(int(status))


@app.command()
def fix(
    from_dump: FromDump = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeout = None,
    parallel: Parallel = None,
    helper_image: HelperImage = None,
    helper_namespace: HelperNamespace = None,
    helpers: Helpers = None,
    debug: Debug = False,
    all_nodes: Annotated[
        bool,
        typer.Option(
            "--all-nodes",
            help="Every node's files and the cluster-wide changes: what fix does without --node, spelled out for scripts.",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan as diffs; change nothing.")] = False,
    yes: Yes = False,
    timeout: Timeout = "3m",
    persist: Annotated[
        bool, typer.Option("--persist", help="Also write the chart values into the HelmChartConfig (k3s/RKE2 charts).")
    ] = False,
) -> None:
    """Repair what diagnose found: diff, back up, write, restart Multus, verify, roll back on failure.

    Node files are written through a short-lived privileged helper pod on that node; the thick
    daemon config in its ConfigMap and the DaemonSet are patched. With --node only that node's
    files change (cluster-wide changes are shown, held back).
    Exit status: 0 fixed and verified (or nothing to fix), 1 failed and rolled back, 3 refused
    before any change, 4 rollback failed; with --dry-run 0 nothing to change, 1 the plan changes something.
    Example: kubectl multus fix --node k3s-2
    """
    global _debug
    _debug = bool(_given.get("debug"))
    from kubectl_multus import render
    from kubectl_multus.core.planner import build_plan

    namespace, node, output = _flag("namespace"), _flag("node"), _output()
    if node and all_nodes:
        raise typer.BadParameter("exclude each other: pass one or neither", param_hint="'--node' and '--all-nodes'")
    try:
        if dry_run or _flag("from_dump"):
            _plan_only(dry_run, namespace, node, output)
        from kubectl_multus.adapters import kubeconn, live
        from kubectl_multus.adapters.fixer import Fixer, FixOptions

        limit = kubeconn.parse_duration(timeout) or 24 * 3600.0
        with _cluster() as (conn, pods, opts):
            snapshot = live.read(conn, opts, pods, _progress)
            report = _report(snapshot, namespace, node)
            plan = build_plan(report, snapshot, node)
            sys.stdout.write(render.plan_text(plan, render.use_color()))
            sys.stdout.flush()
            owned = _owners(plan, report, snapshot)
            if owned and persist:
                from kubectl_multus.adapters.fixer import persist as write_values

                for own, values in owned:
                    if own.kind == "helmchart":
                        _say(f"wrote {write_values(conn, own, values)}: the chart keeps the fix from now on")
            if not plan.items:
                if plan.manual or plan.held_back or plan.conflicts:
                    _say("nothing applied: what remains is listed above")
                raise typer.Exit(int(ExitStatus.OK))
            _confirm(yes, f"Apply the changes above ({len(plan.items)} object(s) or file(s)) to {conn.context}?")
            fixer = Fixer(conn, FixOptions(limit, opts.helper_image, opts.helper_namespace), pods, _say, _progress)
            try:
                fixer.preflight(plan, report)
                fixer.apply(plan, report)
            finally:
                fixer.close()
        _say("fixed and verified")
    except MultusError as exc:
        _fail(exc)
    raise typer.Exit(int(ExitStatus.OK))


@app.command()
def rollback(
    from_dump: FromDump = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeout = None,
    parallel: Parallel = None,
    helper_image: HelperImage = None,
    helper_namespace: HelperNamespace = None,
    helpers: Helpers = None,
    debug: Debug = False,
    list_: Annotated[bool, typer.Option("--list", help="List the backups of this cluster.")] = False,
    yes: Yes = False,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout", metavar="DURATION", help="How long to wait for the restarted Multus pods to be recreated."
        ),
    ] = "3m",
) -> None:
    """Put back what the latest fix replaced (on --node, if given) and restart Multus.

    It reports the pods' state without waiting for Ready: what it restores may be what did not
    work. What it replaces is kept as a backup too, so a second rollback puts the fix back.

    Example: kubectl multus rollback --node k3s-2
    """
    global _debug
    _debug = bool(_given.get("debug"))
    from kubectl_multus.adapters import kubeconn, statedir

    node = _flag("node")
    try:
        conn = kubeconn.resolve(_flag("kubeconfig"), _flag("context"), _flag("request_timeout", "30s"))
        if _flag("from_dump"):
            raise Refused("rollback works on a cluster, not on a dump")
        cluster = statedir.cluster_key(conn.context, conn.server)
        backups = [b for b in statedir.listing(cluster) if node is None or b.target.node == node]
        if list_ and not backups:
            typer.echo(f"no backups of {cluster}{' for node ' + node if node else ''} in {statedir.root()}")
            raise typer.Exit(int(ExitStatus.OK))
        if list_:
            typer.echo(f"backups of {cluster}, newest first (rollback restores the first):")
            for b in backups:
                beside = f"; on the node: {b.node_copy}" if b.node_copy else ""
                typer.echo(f"  {b.created}  {b.target}{beside}\n    local copy: {b.folder}")
            raise typer.Exit(int(ExitStatus.OK))
        if not backups:
            raise Refused(f"no backup of {cluster}{' for node ' + node if node else ''} in {statedir.root()}")
        latest = backups[0]
        from kubectl_multus.adapters import live
        from kubectl_multus.adapters.fixer import Fixer, FixOptions

        with _cluster() as (conn, pods, opts):
            report = _report(live.read(conn, opts, pods, _progress), _flag("namespace"), None)
            _confirm(yes, f"Restore {latest.target} as it was at {latest.created}?")
            limit = kubeconn.parse_duration(timeout) or 24 * 3600.0
            fixer = Fixer(conn, FixOptions(limit, opts.helper_image, opts.helper_namespace), pods, _say, _progress)
            try:
                fixer.restore(latest, report)
            finally:
                fixer.close()
    except MultusError as exc:
        _fail(exc)
    raise typer.Exit(int(ExitStatus.OK))


@app.command()
def cleanup(
    from_dump: FromDump = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeout = None,
    parallel: Parallel = None,
    helper_image: HelperImage = None,
    helper_namespace: HelperNamespace = None,
    helpers: Helpers = None,
    debug: Debug = False,
) -> None:
    """Delete helper pods that a run of kubectl multus left behind (found by their label).

    Example: kubectl multus cleanup
    """
    global _debug
    _debug = bool(_given.get("debug"))
    from kubectl_multus.adapters import helperpod, kubeconn

    try:
        if _flag("from_dump"):
            raise Refused("cleanup works on a cluster, not on a dump")
        conn = kubeconn.resolve(_flag("kubeconfig"), _flag("context"), _flag("request_timeout", "30s"))
        removed = helperpod.remove_leftovers(conn, _flag("namespace"))
    except MultusError as exc:
        _fail(exc)
    typer.echo(f"deleted {len(removed)} helper pod(s)" + (f": {', '.join(removed)}" if removed else ""))
    raise typer.Exit(int(ExitStatus.OK))


@app.command()
def dump(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="A new or empty directory to write the snapshot to.")],
    from_dump: FromDump = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    node: NodeOpt = None,
    output: OutputOpt = None,
    request_timeout: RequestTimeout = None,
    parallel: Parallel = None,
    helper_image: HelperImage = None,
    helper_namespace: HelperNamespace = None,
    helpers: Helpers = None,
    debug: Debug = False,
    redact: Annotated[
        bool, typer.Option("--redact", help="Also replace node names and IP addresses, consistently.")
    ] = False,
) -> None:
    """Write what diagnose reads (objects, logs, node files) to DIR, for a bug report.

    Secrets never leave the cluster: tokens, keys and Secrets are replaced or left out.
    Example: kubectl multus dump ./multus-dump --redact
    """
    global _debug
    _debug = bool(_given.get("debug"))
    from pathlib import Path

    from kubectl_multus.adapters import dumpwrite

    try:
        written = dumpwrite.write(_snapshot(), Path(directory), redact=redact)
    except MultusError as exc:
        _fail(exc)
    typer.echo(
        f"wrote {len(written)} files to {directory}; read it back with: kubectl multus diagnose --from-dump {directory}",
        err=True,
    )
    raise typer.Exit(int(ExitStatus.OK))


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: helper pods are deleted on the way out


def run() -> None:
    global _debug
    _debug = False
    _given.clear()
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        # The completion variable is named here: Typer's default is built from PROG, which has a space
        # (kubectl_multus/completion.py sets it for `kubectl multus <TAB>`).
        app(prog_name=PROG, complete_var="_KUBECTL_MULTUS_COMPLETE")
    except Exception as exc:  # a bug: still one line, unless --debug asks for the traceback
        if _debug or "--debug" in sys.argv:
            raise
        typer.echo(
            f"kubectl multus: internal error: {type(exc).__name__}: {exc} (rerun with --debug and report it)", err=True
        )
        sys.exit(int(ExitStatus.CANNOT_CHECK))
