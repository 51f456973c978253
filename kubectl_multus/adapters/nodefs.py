"""Read a node's files through a pod: `tar` for the small config trees, `find -maxdepth 1` for the
bin dirs. Two execs per node, paths as argv items, output parsed here."""

from __future__ import annotations

import io
import re
import tarfile
from typing import Any

from kubectl_multus.adapters import podexec
from kubectl_multus.core.capture import CapturePlan, Member, Reach, node_files
from kubectl_multus.core.snapshot import NodeFiles
from kubectl_multus.errors import NodeAccessError

MAX_ARCHIVE = 32 * 1024 * 1024
MAX_TEXT = 256 * 1024
_TAR_MISSING = re.compile(r"^tar: (.+?): (?:Cannot stat: |Cannot open: )?No such file or directory", re.M)
_FIND_MISSING = re.compile(r"^find: ['‘]?(.+?)['’]?: No such file or directory", re.M)


class ToolMissing(NodeAccessError):
    """The container has no `tar` or `find` (distroless images): use a helper pod instead."""


def _run(
    api_client: Any, namespace: str, pod: str, container: str, argv: list[str], timeout: float
) -> podexec.Completed:
    try:
        return podexec.run(api_client, namespace, pod, container, argv, timeout=timeout)
    except podexec.CommandNotFound as exc:
        raise ToolMissing(str(exc)) from exc


def _check(done: podexec.Completed, where: str) -> None:
    if done.exit_code in (126, 127) or b"executable file not found" in done.stderr:
        raise ToolMissing(f"{done.argv[0]} is not available in {where}")


def _members(archive: bytes) -> list[Member]:
    out: list[Member] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            for info in tar:
                path = "/" + info.name.removeprefix("./").strip("/")
                if info.isdir():
                    out.append(Member(path, "dir"))
                elif info.issym():
                    out.append(Member(path, "link", target=info.linkname))
                elif info.isfile():
                    data = tar.extractfile(info)
                    out.append(
                        Member(path, "file", data.read() if data is not None and info.size <= MAX_TEXT else None)
                    )
    except tarfile.ReadError as exc:
        if archive:
            raise NodeAccessError(f"unreadable tar output: {exc}") from exc
    return out


def capture(
    api_client: Any, namespace: str, pod: str, container: str, plan: CapturePlan, reach: Reach, *, timeout: float
) -> NodeFiles:
    where = f"{reach.through}"
    members: list[Member] = []
    missing: list[str] = []
    trees = [c for c in (reach.to_container(h) for h in plan.trees) if c]
    if trees:
        done = _run(api_client, namespace, pod, container, ["tar", "-c", "-f", "-", *trees], timeout)
        _check(done, where)
        if len(done.stdout) > MAX_ARCHIVE:
            raise NodeAccessError(f"{where}: the config dirs hold more than {MAX_ARCHIVE >> 20} MiB; not reading them")
        members += _members(done.stdout)
        missing += _TAR_MISSING.findall(done.stderr.decode(errors="replace"))
    listings = [c for c in (reach.to_container(h) for h in plan.listings) if c]
    if listings:
        done = podexec.run(
            api_client, namespace, pod, container, ["find", *listings, "-maxdepth", "1"], timeout=timeout
        )
        _check(done, where)
        roots = set(listings)
        for line in done.stdout.decode(errors="replace").splitlines():
            path = line.rstrip("/") or "/"
            members.append(Member(path, "dir" if path in roots else "file"))
        missing += _FIND_MISSING.findall(done.stderr.decode(errors="replace"))
    return node_files(plan, reach, members, missing, MAX_TEXT)
