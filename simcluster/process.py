"""How a simulated container runs: a generator the kubelet resumes on a clock the tests control.

A program is a function of a `ContainerContext` that returns a generator. It yields `Wait`
to let time pass (optionally waking early when a condition holds: the real Multus polls its
files once a second, so a file that appears mid-wait is noticed) and `Ready` once it is up.
Its return value is the container's exit code; a program that never returns keeps running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from simcluster.fs import ContainerFS


@dataclass(frozen=True)
class Wait:
    """Sleep `seconds` of virtual time (None: forever), or until `until()` turns true."""

    seconds: float | None
    until: Callable[[], bool] | None = None


@dataclass(frozen=True)
class Ready:
    """The program is up: from now on the container counts as started (and ready)."""


Step = Wait | Ready
# send() value after a Wait: True when `until` woke it, False when the time ran out.
Process = Generator[Step, bool, int]


class Clock:
    """Virtual time in epoch seconds. `speed` virtual seconds pass per real second (0: only
    `advance` moves it), so tests are exact and a demo can still run on its own."""

    def __init__(self, start: float | None = None, speed: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._base = time.time() if start is None else start
        self._real0 = time.monotonic()
        self._offset = 0.0
        self.speed = speed

    def now(self) -> float:
        with self._lock:
            return self._base + self._offset + (time.monotonic() - self._real0) * self.speed

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    @staticmethod
    def stamp(t: float) -> str:
        """RFC 3339 in UTC, second precision, as Kubernetes and Multus print it."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class ContainerContext:
    """What a program gets: its pod and container spec, its files, its clock, its log."""

    pod: dict[str, Any]
    container: dict[str, Any]
    fs: ContainerFS
    node_name: str
    clock: Clock
    env: dict[str, str] = field(default_factory=dict)
    lines: list[tuple[float, str]] = field(default_factory=list)
    # Run when the container is stopped (pod deleted): the real Multus cleans up on SIGTERM.
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    # The virtual time of the step being run (the kubelet sets it; logs are stamped with it).
    at: float = 0.0

    def log(self, line: str) -> None:
        self.lines.append((self.at, line))

    @property
    def args(self) -> list[str]:
        return [str(a) for a in (self.container.get("command") or []) + (self.container.get("args") or [])]


Program = Callable[[ContainerContext], Process]


@dataclass
class Outcome:
    """What `run_alone` saw: the exit code (None: still running), whether it got Ready, when it ended."""

    exit_code: int | None
    ready: bool
    ended_at: float


def run_alone(program: Program, ctx: ContainerContext, *, horizon: float = 600.0) -> Outcome:
    """Run one program by itself until it exits or `horizon` virtual seconds pass, advancing
    the clock as it waits. For tests of a program alone; the kubelet runs many at once."""
    start = ctx.clock.now()
    ctx.at = start
    gen = program(ctx)
    ready = False
    value: bool | None = None
    try:
        while True:
            step = gen.send(value) if value is not None else next(gen)
            value = None
            if isinstance(step, Ready):
                ready = True
                value = True
                continue
            # Poll the condition once a virtual second, as the real daemon does.
            waited = 0.0
            woke = False
            limit = step.seconds
            while limit is None or waited < limit:
                if step.until is not None and step.until():
                    woke = True
                    break
                if ctx.at - start >= horizon:
                    return Outcome(None, ready, ctx.at)
                tick = 1.0 if limit is None else min(1.0, limit - waited)
                ctx.clock.advance(tick)
                ctx.at += tick
                waited += tick
            value = woke
    except StopIteration as stop:
        return Outcome(int(stop.value or 0), ready, ctx.at)
