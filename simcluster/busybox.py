"""Busybox-like applets and a small POSIX `sh`, run inside a simulated container.

`run(argv, fs)` is what `kubectl exec` does in the simulation: argv[0] names an applet (by
basename, so `/bin/cat` works too) and every path a command touches goes through the
container's `ContainerFS`, so mounts, read-only mounts and symlinks that dangle inside the pod
behave as they would in a real one. Messages and exit codes follow busybox 1.36, because
that is what the product and its users see in real containers.
"""

from __future__ import annotations

import ast
import base64 as b64
import contextlib
import copy
import dataclasses
import errno
import fnmatch
import hashlib
import io
import itertools
import os
import posixpath
import random
import re
import stat as st_mod
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from simcluster.fs import ContainerFS

BUSYBOX_BANNER = "BusyBox v1.36.1 (simcluster) multi-call binary."
KERNEL_RELEASE = "5.15.0-simcluster"
KERNEL_VERSION = "#1 SMP PREEMPT_DYNAMIC"
MACHINE = "x86_64"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A `while` loop that never ends would hang the simulation: time does not pass inside an exec.
LOOP_LIMIT = 10_000


@dataclass(frozen=True)
class Completed:
    exit_code: int
    stdout: bytes
    stderr: bytes


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _why(e: OSError) -> str:
    return os.strerror(e.errno) if e.errno else str(e)


def _oserror(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


# --- streams ----------------------------------------------------------------------------
class Sink:
    """Where a command's output goes."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError


class BufferSink(Sink):
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class NullSink(Sink):
    def write(self, data: bytes) -> None:
        pass


class FileSink(Sink):
    """A container file opened by `>` (truncated now) or `>>`; every write appends, so output
    lands in the file as a command produces it, as it would through a real descriptor."""

    def __init__(self, fs: ContainerFS, path: str, *, append: bool) -> None:
        fs.write_bytes(path, b"", append=append)
        self.fs = fs
        self.path = path

    def write(self, data: bytes) -> None:
        if data:
            self.fs.write_bytes(self.path, data, append=True)


class Input:
    """A command's stdin. Shared by the commands of a script, so the first one to read it
    consumes it, as with a real pipe."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = data
        self._pos = 0

    def read(self) -> bytes:
        rest = self._data[self._pos :]
        self._pos = len(self._data)
        return rest

    def readline(self) -> bytes:
        end = self._data.find(b"\n", self._pos)
        end = len(self._data) if end < 0 else end + 1
        line = self._data[self._pos : end]
        self._pos = end
        return line


_DEVICES = {
    "/dev/null": "null",
    "/dev/zero": "zero",
    "/dev/stdin": "stdin",
    "/dev/stdout": "stdout",
    "/dev/stderr": "stderr",
    "/dev/fd/0": "stdin",
    "/dev/fd/1": "stdout",
    "/dev/fd/2": "stderr",
}


def _device(path: str) -> str | None:
    """Device files every container has, whether or not the simulated rootfs holds them."""
    return _DEVICES.get(posixpath.normpath(path)) if path.startswith("/") else None


# --- applet context and registry --------------------------------------------------------
@dataclass
class Ctx:
    """What an applet runs with: the container's files, its streams, environment and cwd."""

    fs: ContainerFS
    stdin: Input
    out: Sink
    err: Sink
    env: dict[str, str]
    cwd: str = "/"
    name: str = "sh"
    argv0: str = "sh"
    # How the calling shell names itself in "not found" messages (ash uses its $0).
    prefix: str = "sh"

    def path(self, p: str) -> str:
        """The absolute container path for an argument (relative ones start at cwd)."""
        return p if not p or p.startswith("/") else posixpath.join(self.cwd, p)

    def print(self, text: str) -> None:
        self.out.write(_b(text))

    def warn(self, msg: str) -> None:
        self.err.write(_b(f"{self.name}: {msg}\n"))

    def read(self, p: str) -> bytes:
        """A file's bytes; `-` and /dev/stdin read stdin."""
        dev = "stdin" if p == "-" else _device(self.path(p))
        if dev == "stdin":
            return self.stdin.read()
        if dev in ("null", "stdout", "stderr"):
            return b""
        if dev == "zero":
            raise _oserror(errno.EFBIG, p)
        return self.fs.read_bytes(self.path(p))

    def write(self, p: str, data: bytes, *, append: bool = False) -> None:
        dev = "stdout" if p == "-" else _device(self.path(p))
        if dev == "stdout":
            self.out.write(data)
        elif dev == "stderr":
            self.err.write(data)
        elif dev not in ("null", "zero"):
            self.fs.write_bytes(self.path(p), data, append=append)


AppletFn = Callable[[Ctx, list[str]], int]


@dataclass(frozen=True)
class Applet:
    fn: AppletFn
    usage: str
    usage_exit: int = 1


APPLETS: dict[str, Applet] = {}


class UsageError(Exception):
    """Bad options: busybox prints the message, its banner and the usage line."""


class AppletError(Exception):
    """A fatal error: `<applet>: <message>` and the exit code."""

    def __init__(self, msg: str, code: int = 1) -> None:
        super().__init__(msg)
        self.code = code


def _applet(*names: str, usage: str = "", usage_exit: int = 1) -> Callable[[AppletFn], AppletFn]:
    def register(fn: AppletFn) -> AppletFn:
        for name in names:
            APPLETS[name] = Applet(fn, usage, usage_exit)
        return fn

    return register


Opts = dict[str, list[str]]


def _getopt(args: list[str], spec: str) -> tuple[Opts, list[str]]:
    """POSIX getopt: `spec` lists flag letters, `x:` takes a value. Stops at the first operand
    (no GNU permutation: busybox on musl does not permute either)."""
    takes = {c for i, c in enumerate(spec) if spec[i + 1 : i + 2] == ":"}
    flags = set(spec.replace(":", ""))
    opts: Opts = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg.startswith("--"):
            raise UsageError(f"unrecognized option '{arg}'")
        if not arg.startswith("-") or arg == "-":
            break
        j = 1
        while j < len(arg):
            c = arg[j]
            if c not in flags:
                raise UsageError(f"invalid option -- '{c}'")
            if c in takes:
                value = arg[j + 1 :]
                if not value:
                    i += 1
                    if i >= len(args):
                        raise UsageError(f"option requires an argument -- '{c}'")
                    value = args[i]
                opts.setdefault(c, []).append(value)
                break
            opts.setdefault(c, []).append("")
            j += 1
        i += 1
    return opts, args[i:]


def _concat(base: str, name: str) -> str:
    """busybox concat_path_file: no doubled slash."""
    return base + name if base.endswith("/") else f"{base}/{name}"


def _last_component(path: str) -> str:
    """busybox bb_get_last_path_component_strip: trailing slashes do not count."""
    stripped = path.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else path


def _try_stat(ctx: Ctx, p: str, *, follow: bool) -> os.stat_result | None:
    try:
        return ctx.fs.stat(ctx.path(p)) if follow else ctx.fs.lstat(ctx.path(p))
    except OSError:
        return None


def _is_dir(ctx: Ctx, p: str, *, follow: bool = True) -> bool:
    st = _try_stat(ctx, p, follow=follow)
    return st is not None and st_mod.S_ISDIR(st.st_mode)


def _read_only(ctx: Ctx, p: str) -> bool:
    try:
        return ctx.fs.resolve(ctx.path(p)).read_only
    except OSError:
        return False


def _uid(uid: int) -> int:
    """The simulated node's files belong to root: the host user that made the temp tree is an
    artefact of the simulation, not something a container would see."""
    return 0 if uid == os.getuid() else uid


def _gid(gid: int) -> int:
    return 0 if gid == os.getgid() else gid


def _names(ctx: Ctx, path: str) -> dict[int, str]:
    """Id -> name from the container's own /etc/passwd or /etc/group, as libc would read it."""
    names = {0: "root"}
    try:
        text = _s(ctx.fs.read_bytes(path))
    except OSError:
        return names
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            names.setdefault(int(fields[2]), fields[0])
    return names


def _read_or_warn(ctx: Ctx, p: str) -> bytes | None:
    try:
        return ctx.read(p)
    except OSError as e:
        ctx.warn("read error: Is a directory" if e.errno == errno.EISDIR else f"can't open '{p}': {_why(e)}")
        return None


def _lines(data: bytes) -> list[bytes]:
    """Lines with their newlines; a last line without one is kept."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _exec(argv: list[str], ctx: Ctx) -> int:
    """Run argv the way a shell would: an applet by basename, else a script file in the fs."""
    name = argv[0] if argv else ""
    applet = APPLETS.get(posixpath.basename(name)) if name else None
    if applet is not None:
        return _call(applet, argv, ctx)
    if "/" in name and ctx.fs.is_file(ctx.path(name)):
        return _exec_file(argv, ctx)
    ctx.err.write(_b(f"{ctx.prefix}: {name}: not found\n"))
    return 127


def _call(applet: Applet, argv: list[str], ctx: Ctx) -> int:
    sub = dataclasses.replace(ctx, name=posixpath.basename(argv[0]), argv0=argv[0])
    try:
        return applet.fn(sub, argv[1:])
    except UsageError as e:
        if str(e):
            sub.warn(str(e))
        sub.err.write(_b(f"{BUSYBOX_BANNER}\n\nUsage: {sub.name} {applet.usage}\n"))
        return applet.usage_exit
    except AppletError as e:
        sub.warn(str(e))
        return e.code


def _exec_file(argv: list[str], ctx: Ctx) -> int:
    """A script: its `#!` interpreter if that is an applet, else sh (ash runs ENOEXEC files)."""
    head = ctx.fs.read_bytes(ctx.path(argv[0]))[:256]
    if head.startswith(b"\x7fELF") or b"\0" in head:
        ctx.err.write(_b(f"{ctx.prefix}: {argv[0]}: can't execute: binaries are not simulated\n"))
        return 126
    interp = ["sh"]
    if head.startswith(b"#!"):
        interp = _s(head[2:].split(b"\n", 1)[0]).split()
        if not interp or posixpath.basename(interp[0]) not in APPLETS:
            ctx.err.write(_b(f"{ctx.prefix}: {argv[0]}: not found\n"))
            return 127
    return _exec([*interp, *argv], ctx)


def _runnable(ctx: Ctx, name: str) -> bool:
    return posixpath.basename(name) in APPLETS or ("/" in name and ctx.fs.is_file(ctx.path(name)))


def run(argv: list[str], fs: ContainerFS, *, stdin: bytes = b"", env: Mapping[str, str] | None = None) -> Completed:
    """Run one `kubectl exec` command in the container whose files `fs` shows.

    The working directory is `$PWD` when the environment gives an absolute one, else `/`.
    Never raises: an unexpected error is exit 1 with a message on stderr.
    """
    out, err = BufferSink(), BufferSink()
    environ = dict(env) if env is not None else {"PATH": DEFAULT_PATH, "HOME": "/root"}
    cwd = environ.get("PWD", "/")
    ctx = Ctx(fs, Input(stdin), out, err, environ, cwd if cwd.startswith("/") else "/")
    try:
        code = _exec(list(argv), ctx)
    except Exception as e:  # the contract: nothing escapes run()
        err.write(_b(f"{argv[0] if argv else 'sh'}: simulator error: {type(e).__name__}: {e}\n"))
        code = 1
    return Completed(code, bytes(out.data), bytes(err.data))


# --- reading files ----------------------------------------------------------------------
@_applet("cat", usage="[-nu] [FILE]...")
def _cat(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(args, "nu")
    status = 0
    number = 0
    for f in files or ["-"]:
        data = _read_or_warn(ctx, f)
        if data is None:
            status = 1
            continue
        if "n" in opts:
            for line in _lines(data):
                number += 1
                ctx.out.write(b"%6d\t" % number + line)
        else:
            ctx.out.write(data)
    return status


def _old_count(args: list[str]) -> list[str]:
    """`head -5` is `head -n 5`."""
    if args and re.fullmatch(r"-\d+", args[0]):
        return ["-n", args[0][1:], *args[1:]]
    return args


def _number(text: str, what: str = "number") -> int:
    """busybox xatoi with the size suffixes head/tail/dd accept."""
    m = re.fullmatch(r"([+-]?\d+)(c|w|b|kB|kD|k|K|MB|MD|M|GB|GD|G)?", text.strip())
    if not m:
        raise AppletError(f"invalid {what} '{text}'")
    scale = {"c": 1, "w": 2, "b": 512, "kB": 1000, "kD": 1000, "k": 1024, "K": 1024, "MB": 1000**2, "MD": 1000**2}
    scale |= {"M": 1024**2, "GB": 1000**3, "GD": 1000**3, "G": 1024**3}
    return int(m.group(1)) * scale.get(m.group(2) or "c", 1)


def _headers(ctx: Ctx, opts: Opts, files: list[str]) -> Callable[[str, bool], None]:
    show = ("v" in opts or len(files) > 1) and "q" not in opts

    def header(name: str, first: bool) -> None:
        if show:
            label = "standard input" if name == "-" else name
            ctx.print(("" if first else "\n") + f"==> {label} <==\n")

    return header


@_applet("head", usage="[-n N] [-c N] [-qv] [FILE]...")
def _head(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(_old_count(args), "n:c:qv")
    files = files or ["-"]
    by_bytes = "c" in opts
    count = _number(opts["c"][-1] if by_bytes else opts.get("n", ["10"])[-1])
    header = _headers(ctx, opts, files)
    status = 0
    for i, f in enumerate(files):
        data = _read_or_warn(ctx, f)
        if data is None:
            status = 1
            continue
        header(f, i == 0)
        # A negative count means all but the last N, as busybox's head allows.
        ctx.out.write(data[:count] if by_bytes else b"".join(_lines(data)[:count]))
    return status


@_applet("tail", usage="[-n [+]N] [-c [+]N] [-qv] [FILE]...")
def _tail(ctx: Ctx, args: list[str]) -> int:
    if any(re.fullmatch(r"-[a-zA-Z]*[fF][a-zA-Z]*", a) for a in args):
        raise AppletError("-f is not simulated: it would never end")
    opts, files = _getopt(_old_count(args), "n:c:qv")
    files = files or ["-"]
    by_bytes = "c" in opts
    spec = opts["c"][-1] if by_bytes else opts.get("n", ["10"])[-1]
    from_start = spec.startswith("+")
    count = abs(_number(spec))
    header = _headers(ctx, opts, files)
    status = 0
    for i, f in enumerate(files):
        data = _read_or_warn(ctx, f)
        if data is None:
            status = 1
            continue
        header(f, i == 0)
        items: list[bytes] | bytes = data if by_bytes else _lines(data)
        # +N counts from the start (1-based); N counts from the end.
        start = max(count - 1, 0) if from_start else max(len(items) - count, 0) if count else len(items)
        picked = items[start:]
        ctx.out.write(picked if isinstance(picked, bytes) else b"".join(picked))
    return status


# --- ls and stat ------------------------------------------------------------------------
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _ls_time(mtime: float) -> str:
    """ls -l's date: time of day within six months, else the year (container TZ is UTC)."""
    t = time.gmtime(mtime)
    age = time.time() - mtime
    if -15 * 60 < age < 3600 * 24 * 365 / 2:
        return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d}  {t.tm_year}"


@dataclass
class _Listed:
    name: str
    path: str
    st: os.stat_result


def _ls_entry(ctx: Ctx, e: _Listed, opts: Opts, users: dict[int, str], groups: dict[int, str]) -> str:
    if "l" not in opts and "n" not in opts:
        return e.name + "\n"
    st = e.st
    uid, gid = _uid(st.st_uid), _gid(st.st_gid)
    if "n" in opts:
        owner = f"{uid:<8} {gid:<8}"
    else:
        owner = f"{users.get(uid, str(uid))[:8]:<8} {groups.get(gid, str(gid))[:8]:<8}"
    line = (
        f"{st_mod.filemode(st.st_mode):<10} {st.st_nlink:>4} {owner} {st.st_size:>9} {_ls_time(st.st_mtime)} {e.name}"
    )
    if st_mod.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            line += " -> " + ctx.fs.readlink(ctx.path(e.path))
    return line + "\n"


def _ls_dir(ctx: Ctx, path: str, opts: Opts) -> tuple[list[_Listed], int]:
    names = ctx.fs.listdir(ctx.path(path))
    if "a" in opts:
        names = [".", "..", *names]
    elif "A" not in opts:
        names = [n for n in names if not n.startswith(".")]
    entries, status = [], 0
    for name in names:
        full = _concat(path, name)
        try:
            st = ctx.fs.stat(ctx.path(full)) if "L" in opts else ctx.fs.lstat(ctx.path(full))
        except OSError as e:
            ctx.warn(f"{full}: {_why(e)}")
            status = 1
            continue
        entries.append(_Listed(name, full, st))
    return entries, status


@_applet("ls", usage="[-1aAdlLn] [FILE]...")
def _ls(ctx: Ctx, args: list[str]) -> int:
    opts, paths = _getopt(args, "1aAdlLn")
    long = "l" in opts or "n" in opts
    # busybox follows symlinks named on the command line unless listing long.
    follow = "L" in opts or not long
    status = 0
    files: list[_Listed] = []
    dirs: list[_Listed] = []
    for p in paths or ["."]:
        try:
            st = ctx.fs.stat(ctx.path(p)) if follow else ctx.fs.lstat(ctx.path(p))
        except OSError as e:
            ctx.warn(f"{p}: {_why(e)}")
            status = 1
            continue
        (dirs if st_mod.S_ISDIR(st.st_mode) and "d" not in opts else files).append(_Listed(p, p, st))
    users, groups = (_names(ctx, "/etc/passwd"), _names(ctx, "/etc/group")) if long else ({}, {})
    for entry in sorted(files, key=lambda x: x.name):
        ctx.print(_ls_entry(ctx, entry, opts, users, groups))
    first = not files
    for d in sorted(dirs, key=lambda x: x.name):
        if len(paths) > 1:
            ctx.print(("" if first else "\n") + f"{d.name}:\n")
        first = False
        try:
            entries, bad = _ls_dir(ctx, d.path, opts)
        except OSError as e:
            ctx.warn(f"can't open '{d.path}': {_why(e)}")
            status = 1
            continue
        status |= bad
        if long:
            ctx.print(f"total {sum(x.st.st_blocks for x in entries) // 2}\n")
        for entry in entries:
            ctx.print(_ls_entry(ctx, entry, opts, users, groups))
    return status


_FILE_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (st_mod.S_ISDIR, "directory"),
    (st_mod.S_ISLNK, "symbolic link"),
    (st_mod.S_ISCHR, "character special file"),
    (st_mod.S_ISBLK, "block special file"),
    (st_mod.S_ISFIFO, "fifo"),
    (st_mod.S_ISSOCK, "socket"),
)


def _file_type(st: os.stat_result) -> str:
    mode = st.st_mode
    if st_mod.S_ISREG(mode):
        return "regular file" if st.st_size else "regular empty file"
    return next((name for test, name in _FILE_KINDS if test(mode)), "weird file")


def _human_time(t: float) -> str:
    frac = round((t % 1) * 1e9) % 1_000_000_000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{frac:09d} +0000"


def _stat_field(ctx: Ctx, c: str, name: str, st: os.stat_result) -> str:
    uid, gid = _uid(st.st_uid), _gid(st.st_gid)
    if c == "N":
        if st_mod.S_ISLNK(st.st_mode):
            return f"'{name}' -> '{ctx.fs.readlink(ctx.path(name))}'"
        return f"'{name}'"
    if c == "U":
        return _names(ctx, "/etc/passwd").get(uid, "UNKNOWN")
    if c == "G":
        return _names(ctx, "/etc/group").get(gid, "UNKNOWN")
    simple: dict[str, object] = {
        "n": name,
        "s": st.st_size,
        "F": _file_type(st),
        "a": f"{st.st_mode & 0o7777:o}",
        "A": st_mod.filemode(st.st_mode),
        "f": f"{st.st_mode:x}",
        "h": st.st_nlink,
        "u": uid,
        "g": gid,
        "i": st.st_ino,
        "d": st.st_dev,
        "b": st.st_blocks,
        "B": 512,
        "o": st.st_blksize,
        "X": int(st.st_atime),
        "Y": int(st.st_mtime),
        "Z": int(st.st_ctime),
        "x": _human_time(st.st_atime),
        "y": _human_time(st.st_mtime),
        "z": _human_time(st.st_ctime),
    }
    return str(simple.get(c, "?"))


def _stat_format(ctx: Ctx, fmt: str, name: str, st: os.stat_result) -> str:
    return re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%" else _stat_field(ctx, m.group(1), name, st), fmt)


def _stat_default(ctx: Ctx, name: str, st: os.stat_result) -> str:
    def f(c: str) -> str:
        return _stat_field(ctx, c, name, st)

    return (
        f"  File: {f('N') if st_mod.S_ISLNK(st.st_mode) else name}\n"
        f"  Size: {st.st_size:<10}\tBlocks: {st.st_blocks:<10} IO Block: {st.st_blksize:<6} {f('F')}\n"
        f"Device: {st.st_dev:x}h/{st.st_dev}d\tInode: {st.st_ino:<10}  Links: {st.st_nlink}\n"
        f"Access: ({st.st_mode & 0o7777:04o}/{f('A')})  Uid: ({f('u'):>5}/{f('U'):>8})   Gid: ({f('g'):>5}/{f('G'):>8})\n"
        f"Access: {f('x')}\nModify: {f('y')}\nChange: {f('z')}\n"
    )


@_applet("stat", usage="[-L] [-c FMT] FILE...")
def _stat(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(args, "Lc:t")
    if not files:
        raise UsageError("")
    status = 0
    for f in files:
        try:
            st = ctx.fs.stat(ctx.path(f)) if "L" in opts else ctx.fs.lstat(ctx.path(f))
        except OSError as e:
            ctx.warn(f"can't stat '{f}': {_why(e)}")
            status = 1
            continue
        if "c" in opts:
            ctx.print(_stat_format(ctx, opts["c"][-1], f, st) + "\n")
        else:
            ctx.print(_stat_default(ctx, f, st))
    return status


# --- test / [ ---------------------------------------------------------------------------
_UNARY = {"-e", "-f", "-d", "-L", "-h", "-s", "-r", "-w", "-x", "-z", "-n", "-b", "-c", "-p", "-S", "-t", "-g", "-u"}
_UNARY |= {"-k", "-O", "-G"}
_BINARY = {"=", "==", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-nt", "-ot", "-ef"}


class _TestError(Exception):
    pass


def _test_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise _TestError(f"{text}: bad number") from None


class _Test:
    """test's grammar: -o binds looser than -a, `!` negates; a binary operator in second
    place wins over everything else, as POSIX requires for three arguments."""

    def __init__(self, ctx: Ctx, args: list[str]) -> None:
        self.ctx = ctx
        self.args = args
        self.pos = 0

    def run(self) -> bool:
        if not self.args:
            return False
        value = self._or()
        if self.pos < len(self.args):
            raise _TestError(f"{self.args[self.pos]}: unknown operand")
        return value

    def _peek(self) -> str | None:
        return self.args[self.pos] if self.pos < len(self.args) else None

    def _or(self) -> bool:
        value = self._and()
        while self._peek() == "-o":
            self.pos += 1
            value = self._and() or value
        return value

    def _and(self) -> bool:
        value = self._not()
        while self._peek() == "-a":
            self.pos += 1
            value = self._not() and value
        return value

    def _binary_ahead(self) -> bool:
        return self.pos + 2 < len(self.args) and self.args[self.pos + 1] in _BINARY

    def _not(self) -> bool:
        if self._peek() == "!" and not self._binary_ahead():
            self.pos += 1
            return not self._not()
        return self._primary()

    def _primary(self) -> bool:
        args = self.args
        if self.pos >= len(args):
            raise _TestError("argument expected")
        if self._binary_ahead():
            left, op, right = args[self.pos : self.pos + 3]
            self.pos += 3
            return self._binary(left, op, right)
        tok = args[self.pos]
        if tok == "(" and self.pos + 1 < len(args):
            self.pos += 1
            value = self._or()
            if self._peek() != ")":
                raise _TestError("')' expected")
            self.pos += 1
            return value
        if tok in _UNARY and self.pos + 1 < len(args):
            self.pos += 2
            return self._unary(tok, args[self.pos - 1])
        self.pos += 1
        return tok != ""

    def _unary(self, op: str, arg: str) -> bool:
        if op in ("-z", "-n"):
            return (arg == "") == (op == "-z")
        if op == "-t":
            return False
        fs, path = self.ctx.fs, self.ctx.path(arg)
        dev = _device(path)
        if dev is not None:
            return op in ("-e", "-c", "-r", "-w")
        if op in ("-L", "-h"):
            return fs.is_symlink(path)
        st = _try_stat(self.ctx, arg, follow=True)
        if st is None:
            return False
        mode = st.st_mode
        checks: dict[str, Callable[[], bool]] = {
            "-e": lambda: True,
            "-f": lambda: st_mod.S_ISREG(mode),
            "-d": lambda: st_mod.S_ISDIR(mode),
            "-s": lambda: st.st_size > 0,
            "-r": lambda: True,  # the simulated container runs as root
            "-w": lambda: not _read_only(self.ctx, arg),
            "-x": lambda: st_mod.S_ISDIR(mode) or bool(mode & 0o111),
            "-b": lambda: st_mod.S_ISBLK(mode),
            "-c": lambda: st_mod.S_ISCHR(mode),
            "-p": lambda: st_mod.S_ISFIFO(mode),
            "-S": lambda: st_mod.S_ISSOCK(mode),
            "-g": lambda: bool(mode & st_mod.S_ISGID),
            "-u": lambda: bool(mode & st_mod.S_ISUID),
            "-k": lambda: bool(mode & st_mod.S_ISVTX),
        }
        return checks.get(op, lambda: True)()

    def _binary(self, left: str, op: str, right: str) -> bool:
        strings: dict[str, Callable[[], bool]] = {
            "=": lambda: left == right,
            "==": lambda: left == right,
            "!=": lambda: left != right,
            "<": lambda: left < right,
            ">": lambda: left > right,
        }
        if op in strings:
            return strings[op]()
        if op in ("-nt", "-ot", "-ef"):
            a = _try_stat(self.ctx, left, follow=True)
            b = _try_stat(self.ctx, right, follow=True)
            if op == "-ef":
                return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
            if op == "-nt":
                return a is not None and (b is None or a.st_mtime > b.st_mtime)
            return b is not None and (a is None or a.st_mtime < b.st_mtime)
        x, y = _test_int(left), _test_int(right)
        return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y, "-ge": x >= y}[op]


@_applet("test", "[", usage="EXPRESSION", usage_exit=2)
def _test(ctx: Ctx, args: list[str]) -> int:
    if ctx.name == "[":
        if not args or args[-1] != "]":
            ctx.warn("missing ]")
            return 2
        args = args[:-1]
    try:
        return 0 if _Test(ctx, args).run() else 1
    except _TestError as e:
        ctx.warn(str(e))
        return 2


# --- making and removing ----------------------------------------------------------------
def _parse_mode(text: str, current: int, *, is_dir: bool = False) -> int | None:
    """An octal mode, or symbolic clauses like `u+x,go-w` applied to `current`."""
    if re.fullmatch(r"[0-7]{1,4}", text):
        return int(text, 8)
    mode = current & 0o7777
    for clause in text.split(","):
        m = re.fullmatch(r"([ugoa]*)((?:[-+=][rwxXstugo]*)+)", clause)
        if not m:
            return None
        who = 0
        for c in m.group(1) or "a":
            who |= {"u": 0o4700, "g": 0o2070, "o": 0o1007, "a": 0o7777}[c]
        for op, perms in re.findall(r"([-+=])([rwxXstugo]*)", m.group(2)):
            bits = 0
            for c in perms:
                if c in "ugo":
                    bits |= ((mode >> {"u": 6, "g": 3, "o": 0}[c]) & 7) * 0o111
                elif c == "X":
                    bits |= 0o111 if is_dir or mode & 0o111 else 0
                else:
                    bits |= {"r": 0o444, "w": 0o222, "x": 0o111, "s": 0o6000, "t": 0o1000}[c]
            bits &= who
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~who) | bits
    return mode


def _makedirs(ctx: Ctx, path: str) -> None:
    """mkdir -p as busybox does it: component by component, an existing directory is fine
    (even on a read-only mount), and a failure names the component that failed."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if not parts[i - 1] or parts[i - 1] in (".", "..") or _is_dir(ctx, prefix):
            continue
        try:
            ctx.fs.mkdir(ctx.path(prefix))
        except OSError as e:
            if not (e.errno == errno.EEXIST and _is_dir(ctx, prefix)):
                raise OSError(e.errno, e.strerror, prefix) from None


@_applet("mkdir", usage="[-m MODE] [-p] DIRECTORY...")
def _mkdir(ctx: Ctx, args: list[str]) -> int:
    opts, dirs = _getopt(args, "m:pv")
    if not dirs:
        raise UsageError("")
    mode = _parse_mode(opts["m"][-1], 0o777, is_dir=True) if "m" in opts else None
    if "m" in opts and mode is None:
        raise AppletError(f"invalid mode '{opts['m'][-1]}'")
    status = 0
    for d in dirs:
        try:
            if "p" in opts:
                _makedirs(ctx, d)
            elif ctx.fs.lexists(ctx.path(d)):
                raise _oserror(errno.EEXIST, d)
            else:
                ctx.fs.mkdir(ctx.path(d))
            if mode is not None:
                ctx.fs.chmod(ctx.path(d), mode)
        except OSError as e:
            ctx.warn(f"can't create directory '{e.filename if 'p' in opts and e.filename else d}': {_why(e)}")
            status = 1
    return status


@_applet("rmdir", usage="[-p] DIRECTORY...")
def _rmdir(ctx: Ctx, args: list[str]) -> int:
    opts, dirs = _getopt(args, "p")
    if not dirs:
        raise UsageError("")
    status = 0
    for d in dirs:
        path = d.rstrip("/") or d
        while True:
            try:
                ctx.fs.rmdir(ctx.path(path))
            except OSError as e:
                ctx.warn(f"'{path}': {_why(e)}")
                status = 1
                break
            path = posixpath.dirname(path)
            if "p" not in opts or path in ("", "/", "."):
                break
    return status


def _remove(ctx: Ctx, path: str, *, recursive: bool, force: bool) -> bool:
    """busybox remove_file: lstat first, recurse into directories, then unlink or rmdir."""
    try:
        st = ctx.fs.lstat(ctx.path(path))
    except OSError as e:
        if e.errno != errno.ENOENT:
            ctx.warn(f"can't stat '{path}': {_why(e)}")
            return False
        if force:
            return True
        ctx.warn(f"can't remove '{path}': {_why(e)}")
        return False
    if st_mod.S_ISDIR(st.st_mode):
        if not recursive:
            ctx.warn(f"'{path}' is a directory")
            return False
        ok = True
        try:
            names = ctx.fs.listdir(ctx.path(path))
        except OSError as e:
            ctx.warn(f"can't open '{path}': {_why(e)}")
            return False
        for name in names:
            ok = _remove(ctx, _concat(path, name), recursive=True, force=force) and ok
        try:
            ctx.fs.rmdir(ctx.path(path))
        except OSError as e:
            ctx.warn(f"can't remove '{path}': {_why(e)}")
            return False
        return ok
    try:
        ctx.fs.remove(ctx.path(path))
    except OSError as e:
        ctx.warn(f"can't remove '{path}': {_why(e)}")
        return False
    return True


@_applet("rm", usage="[-irf] FILE...")
def _rm(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(args, "fiRrv")
    force = "f" in opts
    if not files and not force:
        raise UsageError("")
    status = 0
    for f in files:
        if _last_component(f) in (".", ".."):
            ctx.warn("can't remove '.' or '..'")
            status = 1
        elif not _remove(ctx, f, recursive=bool(opts.keys() & {"r", "R"}), force=force):
            status = 1
    return status


@dataclass
class _CopyOpts:
    deref: bool
    recursive: bool
    preserve: bool
    created: set[tuple[int, int]] = field(default_factory=set)


def _unlink_for_create(ctx: Ctx, dst: str, code: int) -> bool:
    """busybox ask_and_unlink: remove what blocks the copy; failing that, report why the
    create failed (the original errno, not unlink's)."""
    try:
        ctx.fs.remove(ctx.path(dst))
    except OSError:
        ctx.warn(f"can't create '{dst}': {os.strerror(code)}")
        return False
    return True


def _copy(ctx: Ctx, src: str, dst: str, co: _CopyOpts) -> bool:
    """busybox copy_file."""
    try:
        st = ctx.fs.stat(ctx.path(src)) if co.deref else ctx.fs.lstat(ctx.path(src))
    except OSError as e:
        ctx.warn(f"can't stat '{src}': {_why(e)}")
        return False
    dst_st = _try_stat(ctx, dst, follow=False)
    if dst_st is not None and (dst_st.st_dev, dst_st.st_ino) == (st.st_dev, st.st_ino):
        ctx.warn(f"'{src}' and '{dst}' are the same file")
        return False
    if st_mod.S_ISDIR(st.st_mode):
        return _copy_dir(ctx, src, dst, st, dst_st, co)
    if st_mod.S_ISLNK(st.st_mode):
        return _copy_link(ctx, src, dst, dst_st)
    return _copy_regular(ctx, src, dst, st, dst_st, co)


def _copy_dir(ctx: Ctx, src: str, dst: str, st: os.stat_result, dst_st: os.stat_result | None, co: _CopyOpts) -> bool:
    if not co.recursive:
        ctx.warn(f"omitting directory '{src}'")
        return False
    if (st.st_dev, st.st_ino) in co.created:
        ctx.warn(f"recursion detected, omitting directory '{src}'")
        return False
    if dst_st is not None and not st_mod.S_ISDIR(dst_st.st_mode):
        ctx.warn(f"target '{dst}' is not a directory")
        return False
    if dst_st is None:
        try:
            ctx.fs.mkdir(ctx.path(dst), mode=(st.st_mode & 0o7777) | 0o700)
        except OSError as e:
            ctx.warn(f"can't create directory '{dst}': {_why(e)}")
            return False
    made = _try_stat(ctx, dst, follow=False)
    if made is not None:
        co.created.add((made.st_dev, made.st_ino))
    try:
        names = ctx.fs.listdir(ctx.path(src))
    except OSError as e:
        ctx.warn(f"can't open '{src}': {_why(e)}")
        return False
    ok = True
    for name in names:
        ok = _copy(ctx, _concat(src, name), _concat(dst, name), co) and ok
    if dst_st is None or co.preserve:
        try:
            ctx.fs.chmod(ctx.path(dst), st.st_mode & 0o7777)
        except OSError:
            ctx.warn(f"can't preserve permissions of '{dst}'")
    return ok


def _copy_link(ctx: Ctx, src: str, dst: str, dst_st: os.stat_result | None) -> bool:
    target = ctx.fs.readlink(ctx.path(src))
    if dst_st is not None and not _unlink_for_create(ctx, dst, errno.EEXIST):
        return False
    try:
        ctx.fs.symlink(target, ctx.path(dst))
    except OSError as e:
        ctx.warn(f"can't create symlink '{dst}': {_why(e)}")
        return False
    return True


def _copy_regular(
    ctx: Ctx, src: str, dst: str, st: os.stat_result, dst_st: os.stat_result | None, co: _CopyOpts
) -> bool:
    try:
        data = ctx.fs.read_bytes(ctx.path(src))
    except OSError as e:
        ctx.warn(f"can't open '{src}': {_why(e)}")
        return False
    mode = st.st_mode & 0o7777 if st_mod.S_ISREG(st.st_mode) else 0o666
    # busybox writes over an existing plain file in place, else unlinks and creates anew.
    in_place = dst_st is not None and not co.recursive and not st_mod.S_ISLNK(dst_st.st_mode)
    try:
        if dst_st is not None and not in_place:
            raise _oserror(errno.EEXIST, dst)
        ctx.fs.write_bytes(ctx.path(dst), data, mode=mode)
    except OSError as e:
        if not _unlink_for_create(ctx, dst, e.errno or errno.EIO):
            return False
        try:
            ctx.fs.write_bytes(ctx.path(dst), data, mode=mode)
        except OSError as e2:
            ctx.warn(f"can't open '{dst}': {_why(e2)}")
            return False
    if co.preserve:
        try:
            ctx.fs.chmod(ctx.path(dst), st.st_mode & 0o7777)
        except OSError:
            ctx.warn(f"can't preserve permissions of '{dst}'")
    return True


@_applet("cp", usage="[-arPLpfdR] SOURCE... DEST")
def _cp(ctx: Ctx, args: list[str]) -> int:
    opts, rest = _getopt(args, "aRrPLpfdHiv")
    if len(rest) < 2:
        raise UsageError("")
    recursive = bool(opts.keys() & {"a", "R", "r"})
    # Plain cp dereferences; -R (and -a, -d, -P) copies links as links unless -L.
    deref = "L" in opts or not (recursive or opts.keys() & {"d", "P"})
    co = _CopyOpts(deref=deref, recursive=recursive, preserve=bool(opts.keys() & {"a", "p"}))
    sources, last = rest[:-1], rest[-1]
    if len(sources) == 1:
        src_st = _try_stat(ctx, sources[0], follow=deref)
        src_dir = src_st is not None and st_mod.S_ISDIR(src_st.st_mode)
        dst_dir = _is_dir(ctx, last)
        if not (src_dir or dst_dir) or (recursive and src_dir and not ctx.fs.exists(ctx.path(last))):
            return 0 if _copy(ctx, sources[0], last, co) else 1
    status = 0
    for src in sources:
        if not _copy(ctx, src, _concat(last, _last_component(src)), co):
            status = 1
    return status


def _crosses_mounts(ctx: Ctx, src: str, dst: str) -> bool:
    try:
        a = ctx.fs.resolve(ctx.path(src), follow=False)
        b = ctx.fs.resolve(ctx.path(dst), follow=False)
    except OSError:
        return False  # a bad path: rename itself says what is wrong, as the kernel would
    return a.mount != b.mount


def _move(ctx: Ctx, src: str, dst: str) -> bool:
    """rename(2); across mounts the kernel says EXDEV before anything else, and busybox then
    copies and deletes (so a read-only source leaves a copy behind and fails to delete)."""
    if not _crosses_mounts(ctx, src, dst):
        try:
            ctx.fs.rename(ctx.path(src), ctx.path(dst))
            return True
        except OSError as e:
            if e.errno != errno.EXDEV:
                ctx.warn(f"can't rename '{src}': {_why(e)}")
                return False
    src_st = _try_stat(ctx, src, follow=False)
    if src_st is None:
        ctx.warn(f"can't rename '{src}': {os.strerror(errno.ENOENT)}")
        return False
    dst_st = _try_stat(ctx, dst, follow=True)
    if dst_st is not None:
        src_dir, dst_dir = st_mod.S_ISDIR(src_st.st_mode), st_mod.S_ISDIR(dst_st.st_mode)
        if src_dir != dst_dir:
            ctx.warn(f"can't overwrite {'' if dst_dir else 'non-'}directory with {'non-' if dst_dir else ''}directory")
            return False
        try:
            ctx.fs.remove(ctx.path(dst))
        except OSError as e:
            ctx.warn(f"can't remove '{dst}': {_why(e)}")
            return False
    co = _CopyOpts(deref=False, recursive=True, preserve=True)
    return _copy(ctx, src, dst, co) and _remove(ctx, src, recursive=True, force=True)


@_applet("mv", usage="[-fin] SOURCE... DEST")
def _mv(ctx: Ctx, args: list[str]) -> int:
    opts, rest = _getopt(args, "finvT")
    if len(rest) < 2:
        raise UsageError("")
    sources, last = rest[:-1], rest[-1]
    if len(sources) == 1 and ("T" in opts or not _is_dir(ctx, last)):
        pairs = [(sources[0], last)]
    else:
        pairs = [(src, _concat(last, _last_component(src))) for src in sources]
    status = 0
    for src, dst in pairs:
        if "n" in opts and ctx.fs.lexists(ctx.path(dst)):
            continue
        if not _move(ctx, src, dst):
            status = 1
    return status


@_applet("ln", usage="[-sfn] TARGET... LINK|DIR")
def _ln(ctx: Ctx, args: list[str]) -> int:
    opts, rest = _getopt(args, "sfnvT")
    if not rest:
        raise UsageError("")
    if "s" not in opts:
        raise AppletError("hard links are not simulated (use -s)")
    targets, last = (rest, _last_component(rest[0])) if len(rest) == 1 else (rest[:-1], rest[-1])
    into_dir = len(rest) > 1 and "T" not in opts and _is_dir(ctx, last, follow="n" not in opts)
    if len(targets) > 1 and not into_dir:
        raise AppletError(f"'{last}' is not a directory")
    status = 0
    for target in targets:
        link = _concat(last, _last_component(target)) if into_dir else last
        if "f" in opts:
            with contextlib.suppress(OSError):
                ctx.fs.remove(ctx.path(link))
        try:
            ctx.fs.symlink(target, ctx.path(link))
        except OSError as e:
            ctx.warn(f"{link}: {_why(e)}")
            status = 1
    return status


def _canonical(ctx: Ctx, p: str, *, must_exist: bool) -> str | None:
    """readlink -f: every symlink resolved; the last component may be missing, its parent not."""
    try:
        resolved = ctx.fs.resolve(ctx.path(p)).path
    except OSError:
        return None
    if must_exist and not ctx.fs.lexists(resolved):
        return None
    if not ctx.fs.exists(posixpath.dirname(resolved) or "/"):
        return None
    return resolved


@_applet("readlink", usage="[-fenv] FILE")
def _readlink(ctx: Ctx, args: list[str]) -> int:
    opts, rest = _getopt(args, "fenvsq")
    if len(rest) != 1:
        raise UsageError("")
    p = rest[0]
    if opts.keys() & {"f", "e"}:
        result = _canonical(ctx, p, must_exist="e" in opts)
        if result is None and "v" in opts:
            ctx.warn(f"{p}: {os.strerror(errno.ENOENT)}")
    else:
        try:
            result = ctx.fs.readlink(ctx.path(p))
        except OSError as e:
            if "v" in opts:
                ctx.warn(f"{p}: {_why(e)}")
            result = None
    if result is None:
        return 1
    ctx.print(result + ("" if "n" in opts else "\n"))
    return 0


@_applet("realpath", usage="FILE...")
def _realpath(ctx: Ctx, args: list[str]) -> int:
    _, files = _getopt(args, "")
    if not files:
        raise UsageError("")
    status = 0
    for f in files:
        result = _canonical(ctx, f, must_exist=False)
        if result is None:
            ctx.warn(f"{f}: {os.strerror(errno.ENOENT)}")
            status = 1
        else:
            ctx.print(result + "\n")
    return status


@_applet("touch", usage="[-c] FILE...")
def _touch(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(args, "cd:t:r:am")
    if not files:
        raise UsageError("")
    status = 0
    for f in files:
        path = ctx.path(f)
        try:
            if ctx.fs.is_file(path):
                # ContainerFS has no utimes: rewriting the bytes bumps the mtime (and refuses
                # a read-only mount just as utimes would).
                ctx.fs.write_bytes(path, ctx.fs.read_bytes(path))
            elif ctx.fs.exists(path):
                if _read_only(ctx, f):
                    raise _oserror(errno.EROFS, f)
            elif "c" not in opts:
                ctx.fs.write_bytes(path, b"", append=True)
        except OSError as e:
            ctx.warn(f"{f}: {_why(e)}")
            status = 1
    return status


def _chmod_one(ctx: Ctx, f: str, spec: str, recursive: bool) -> bool:
    try:
        st = ctx.fs.stat(ctx.path(f))
        mode = _parse_mode(spec, st.st_mode, is_dir=st_mod.S_ISDIR(st.st_mode))
        if mode is None:
            raise AppletError(f"invalid mode '{spec}'")
        ctx.fs.chmod(ctx.path(f), mode)
    except OSError as e:
        ctx.warn(f"{f}: {_why(e)}")
        return False
    ok = True
    if recursive and st_mod.S_ISDIR(st.st_mode):
        for name in ctx.fs.listdir(ctx.path(f)):
            child = _concat(f, name)
            if not ctx.fs.is_symlink(ctx.path(child)):
                ok = _chmod_one(ctx, child, spec, True) and ok
    return ok


@_applet("chmod", usage="[-R] MODE FILE...")
def _chmod(ctx: Ctx, args: list[str]) -> int:
    # `chmod -w f` is a mode, not an option: only -R/-v/-c/-f clusters are options.
    flags = ""
    while args and re.fullmatch(r"-[Rvcf]+", args[0]):
        flags += args[0][1:]
        args = args[1:]
    if args and args[0] == "--":
        args = args[1:]
    if len(args) < 2:
        raise UsageError("")
    spec, files = args[0], args[1:]
    if _parse_mode(spec, 0) is None:
        raise AppletError(f"invalid mode '{spec}'")
    return 0 if all([_chmod_one(ctx, f, spec, "R" in flags) for f in files]) else 1


# --- text -------------------------------------------------------------------------------
_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unescape(text: str, *, echo: bool) -> tuple[str, bool]:
    """Backslash escapes of echo -e (octal as \\0NNN) and printf (\\NNN); True when \\c stops output."""
    out: list[str] = []
    i = 0
    octal = re.compile(r"0([0-7]{0,3})" if echo else r"([0-7]{1,3})")
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        m = octal.match(text, i + 1)
        hexa = re.compile(r"x([0-9a-fA-F]{1,2})").match(text, i + 1)
        if nxt == "c":
            return "".join(out), True
        if m:
            out.append(chr(int(m.group(1) or "0", 8) & 0xFF))
            i = m.end()
        elif hexa:
            out.append(chr(int(hexa.group(1), 16)))
            i = hexa.end()
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append("\\" + nxt)
            i += 2
    return "".join(out), False


@_applet("echo", usage="[-neE] [ARG]...")
def _echo(ctx: Ctx, args: list[str]) -> int:
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        for c in args[0][1:]:
            newline = newline and c != "n"
            escapes = c == "e" or (escapes and c != "E")
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stopped = _unescape(text, echo=True)
        newline = newline and not stopped
    ctx.print(text + ("\n" if newline else ""))
    return 0


_PRINTF_SPEC = re.compile(r"%([-+ #0]*)(\d+|\*)?(?:\.(\d*|\*))?([diouxXeEfFgGcsb%])")


def _c_number(text: str | None) -> tuple[int, bool]:
    """strtol the way printf does: 0x hex, 0 octal, 'c a character code."""
    if text is None or text == "":
        return 0, True
    s = text.strip()
    if s[:1] in ("'", '"'):
        return (ord(s[1]) if len(s) > 1 else 0), True
    for pattern, base in ((r"[+-]?0[xX][0-9a-fA-F]+", 16), (r"[+-]?0[0-7]+", 8), (r"[+-]?\d+", 10)):
        if re.fullmatch(pattern, s):
            return int(s, base), True
    m = re.match(r"[+-]?\d+", s)
    return (int(m.group()) if m else 0), False


def _printf_one(spec: str, conv: str, arg: str | None) -> tuple[str, bool]:
    if conv in "sb":
        text = arg or ""
        return (spec + "s") % (_unescape(text, echo=True)[0] if conv == "b" else text), True
    if conv == "c":
        return (spec + "s") % (arg or "")[:1], True
    if conv in "diouxX":
        n, ok = _c_number(arg)
        return (spec + ("d" if conv in "iu" else conv)) % n, ok
    try:
        return (spec + conv) % float(arg or 0), True
    except ValueError:
        return (spec + conv) % 0.0, False


@_applet("printf", usage="FORMAT [ARG]...")
def _printf(ctx: Ctx, args: list[str]) -> int:
    if not args:
        raise UsageError("")
    fmt, values = args[0], args[1:]
    out: list[str] = []
    status, used = 0, 0
    while True:
        start, consumed = 0, False
        for m in _PRINTF_SPEC.finditer(fmt):
            text, stop = _unescape(fmt[start : m.start()], echo=False)
            out.append(text)
            if stop:
                ctx.print("".join(out))
                return status
            start = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue
            if width == "*":
                width = str(_c_number(values[used] if used < len(values) else None)[0])
                used += 1
            spec = "%" + flags + (width or "") + ("." + prec if prec is not None else "")
            arg = values[used] if used < len(values) else None
            used += arg is not None
            consumed = consumed or arg is not None
            piece, ok = _printf_one(spec, conv, arg)
            if not ok:
                ctx.warn(f"invalid number '{arg}'")
                status = 1
            out.append(piece)
        text, stop = _unescape(fmt[start:], echo=False)
        out.append(text)
        # The format is reused while arguments remain, as POSIX printf does.
        if stop or used >= len(values) or not consumed:
            break
    ctx.print("".join(out))
    return status


@_applet("true", ":", usage="")
def _true(ctx: Ctx, args: list[str]) -> int:
    return 0


@_applet("false", usage="")
def _false(ctx: Ctx, args: list[str]) -> int:
    return 1


@_applet("sync", usage="[-df] [FILE]...")
def _sync(ctx: Ctx, args: list[str]) -> int:
    return 0


@_applet("sleep", usage="N[smhd]...")
def _sleep(ctx: Ctx, args: list[str]) -> int:
    # Returns at once: virtual time is the kubelet's job, not the exec's.
    if not args:
        raise UsageError("")
    for arg in args:
        if not re.fullmatch(r"(\d+\.?\d*|\.\d+)[smhd]?", arg):
            raise AppletError(f"invalid number '{arg}'")
    return 0


@_applet("env", usage="[-i] [-u NAME] [NAME=VALUE]... [PROG ARGS]")
def _env(ctx: Ctx, args: list[str]) -> int:
    if args and args[0] == "-":
        args = ["-i", *args[1:]]
    opts, rest = _getopt(args, "iu:0")
    env = {} if "i" in opts else dict(ctx.env)
    for name in opts.get("u", []):
        env.pop(name, None)
    while rest and "=" in rest[0] and not rest[0].startswith("="):
        key, _, value = rest.pop(0).partition("=")
        env[key] = value
    if not rest:
        end = "\0" if "0" in opts else "\n"
        ctx.print("".join(f"{k}={v}{end}" for k, v in env.items()))
        return 0
    if not _runnable(ctx, rest[0]):
        ctx.warn(f"can't execute '{rest[0]}': {os.strerror(errno.ENOENT)}")
        return 127
    return _exec(rest, dataclasses.replace(ctx, env=env))


@_applet("id", usage="[-ugGnr] [USER]")
def _id(ctx: Ctx, args: list[str]) -> int:
    opts, _ = _getopt(args, "ugGnr")
    for flag in "ugG":
        if flag in opts:
            ctx.print("root\n" if "n" in opts else "0\n")
            return 0
    ctx.print("uid=0(root) gid=0(root) groups=0(root)\n")
    return 0


def _hostname(ctx: Ctx) -> str:
    if ctx.env.get("HOSTNAME"):
        return ctx.env["HOSTNAME"]
    try:
        return _s(ctx.fs.read_bytes("/etc/hostname")).strip() or "localhost"
    except OSError:
        return "localhost"


@_applet("uname", usage="[-asnrvmpio]")
def _uname(ctx: Ctx, args: list[str]) -> int:
    opts, _ = _getopt(args, "asnrvmpio")
    values = {"s": "Linux", "n": _hostname(ctx), "r": KERNEL_RELEASE, "v": KERNEL_VERSION, "m": MACHINE}
    values |= {"p": "unknown", "i": "unknown", "o": "GNU/Linux"}
    # busybox -a leaves out -p and -i when they are "unknown".
    keys = "snrvmo" if "a" in opts else [k for k in "snrvmpio" if k in opts] or ["s"]
    ctx.print(" ".join(values[k] for k in keys) + "\n")
    return 0


@_applet("hostname", usage="")
def _hostname_applet(ctx: Ctx, args: list[str]) -> int:
    ctx.print(_hostname(ctx) + "\n")
    return 0


@_applet("pwd", usage="[-LP]")
def _pwd(ctx: Ctx, args: list[str]) -> int:
    ctx.print(ctx.cwd + "\n")
    return 0


@_applet("which", usage="COMMAND...")
def _which(ctx: Ctx, args: list[str]) -> int:
    status = 0
    for name in args:
        if "/" in name and ctx.fs.is_file(ctx.path(name)):
            ctx.print(name + "\n")
        elif "/" not in name and name in APPLETS:
            ctx.print(f"/bin/{name}\n")
        else:
            status = 1
    return status


@_applet("basename", usage="FILE [SUFFIX]")
def _basename(ctx: Ctx, args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise UsageError("")
    stripped = args[0].rstrip("/")
    name = stripped.rsplit("/", 1)[-1] if stripped else ("/" if args[0] else "")
    if len(args) == 2 and name != args[1] and name.endswith(args[1]):
        name = name[: -len(args[1])]
    ctx.print(name + "\n")
    return 0


@_applet("dirname", usage="FILENAME")
def _dirname(ctx: Ctx, args: list[str]) -> int:
    if len(args) != 1:
        raise UsageError("")
    stripped = args[0].rstrip("/")
    if not stripped:
        result = "/" if args[0].startswith("/") else "."
    elif "/" not in stripped:
        result = "."
    else:
        result = stripped.rsplit("/", 1)[0].rstrip("/") or "/"
    ctx.print(result + "\n")
    return 0


@_applet("wc", usage="[-cmlwL] [FILE]...")
def _wc(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(args, "cmlwL")
    order = [c for c in "lwmcL" if c in opts] or ["l", "w", "c"]
    names = files or [""]
    # busybox pads every column to 9 except a lone count of a lone file.
    first_fmt = "{}" if len(names) <= 1 and len(order) == 1 else "{:>9}"
    totals = dict.fromkeys(order, 0)
    status = 0
    for name in names:
        try:
            data = ctx.read(name or "-")
        except OSError as e:
            ctx.warn(f"{name}: {_why(e)}")
            status = 1
            continue
        lengths = [len(line.rstrip(b"\n")) for line in _lines(data)] or [0]
        counts = {"l": data.count(b"\n"), "w": len(data.split()), "m": len(_s(data)), "c": len(data), "L": max(lengths)}
        for k in order:
            totals[k] = max(totals[k], counts[k]) if k == "L" else totals[k] + counts[k]
        cols = [first_fmt.format(counts[order[0]])] + [f"{counts[k]:>9}" for k in order[1:]]
        ctx.print(" ".join(cols) + (f" {name}" if name else "") + "\n")
    if len(names) > 1:
        ctx.print(" ".join(f"{totals[k]:>9}" for k in order) + " total\n")
    return status


_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "xdigit": "0-9A-Fa-f",
    "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
    "cntrl": r"\x00-\x1f\x7f",
}


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """A POSIX bracket expression starting at pattern[i] == '[', as a Python class."""
    j = i + 1
    out = "["
    if pattern[j : j + 1] in ("^", "!"):
        out += "^"
        j += 1
    if pattern[j : j + 1] == "]":
        out += r"\]"
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        m = re.compile(r"\[:(\w+):\]").match(pattern, j)
        if m and m.group(1) in _POSIX_CLASSES:
            out += _POSIX_CLASSES[m.group(1)]
            j = m.end()
            continue
        out += re.escape(pattern[j]) if pattern[j] in "\\[" else pattern[j]
        j += 1
    if j >= len(pattern):
        return re.escape(pattern[i]), i + 1
    return out + "]", j + 1


def _posix_regex(pattern: str, *, extended: bool) -> str:
    """A POSIX BRE or ERE as a Python regex (GNU's \\+ \\? \\| in BREs included)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            piece, i = _bracket(pattern, i)
            out.append(piece)
            continue
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if not extended and nxt in "(){}|+?":
                out.append(nxt)
            elif nxt in "<>":
                out.append(r"\b")
            else:
                out.append("\\" + nxt)
            i += 2
            continue
        at_start = not out or out[-1] in ("(", "^", "|")
        if not extended and c in "(){}|+?":
            out.append("\\" + c)
        elif c == "*" and at_start:
            out.append(r"\*")
        else:
            out.append(c)
        i += 1
    return "".join(out)


@_applet("grep", "egrep", "fgrep", usage="[-qFEvicnlsxwHh] [-e PATTERN]... PATTERN [FILE]...", usage_exit=2)
def _grep(ctx: Ctx, args: list[str]) -> int:
    opts, rest = _getopt(args, "qFEGe:vicnlsxwHh")
    if "e" in opts:
        patterns = opts["e"]
    elif rest:
        patterns = [rest.pop(0)]
    else:
        raise UsageError("")
    fixed = "F" in opts or ctx.name == "fgrep"
    extended = "E" in opts or ctx.name == "egrep"
    alternatives = []
    for p in "\n".join(patterns).split("\n"):
        alternatives.append(re.escape(p) if fixed else _posix_regex(p, extended=extended))
    body = "|".join(f"(?:{a})" for a in alternatives)
    if "w" in opts:
        body = rf"(?<!\w)(?:{body})(?!\w)"
    if "x" in opts:
        body = rf"^(?:{body})$"
    try:
        regex = re.compile(_b(body), re.IGNORECASE if "i" in opts else 0)
    except re.error as e:
        raise AppletError(f"bad regex '{patterns[0]}': {e}", 2) from None
    files = rest or ["-"]
    show_name = ("H" in opts or len(files) > 1) and "h" not in opts
    matched, errors = False, False
    for f in files:
        try:
            data = ctx.read(f)
        except OSError as e:
            if "s" not in opts:
                ctx.warn(f"{f}: {_why(e)}")
            errors = True
            continue
        label = "(standard input)" if f == "-" else f
        prefix = _b(label + ":") if show_name else b""
        count = 0
        for number, line in enumerate(_lines(data), 1):
            text = line.rstrip(b"\n")
            if bool(regex.search(text)) == ("v" in opts):
                continue
            count += 1
            matched = True
            if "q" in opts:
                return 0
            if "l" in opts:
                break
            if "c" not in opts:
                ctx.out.write(prefix + (b"%d:" % number if "n" in opts else b"") + text + b"\n")
        if "c" in opts:
            ctx.out.write(prefix + b"%d\n" % count)
        if "l" in opts and count:
            ctx.print(label + "\n")
    return 2 if errors else (0 if matched else 1)


@_applet("base64", usage="[-d] [-w COL] [FILE]")
def _base64(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(args, "dw:")
    if len(files) > 1:
        raise UsageError("")
    data = _read_or_warn(ctx, files[0] if files else "-")
    if data is None:
        return 1
    if "d" in opts:
        try:
            ctx.out.write(b64.b64decode(b"".join(data.split()), validate=True))
        except ValueError:
            raise AppletError("invalid input") from None
        return 0
    encoded = b64.b64encode(data)
    width = int(opts["w"][-1]) if "w" in opts else 76
    if encoded:
        chunks = [encoded[i : i + width] for i in range(0, len(encoded), width)] if width else [encoded]
        ctx.out.write(b"\n".join(chunks) + b"\n")
    return 0


def _make_sum(algorithm: str) -> AppletFn:
    def checksum(ctx: Ctx, args: list[str]) -> int:
        _, files = _getopt(args, "bt")
        status = 0
        for f in files or ["-"]:
            data = _read_or_warn(ctx, f)
            if data is None:
                status = 1
                continue
            ctx.print(f"{hashlib.new(algorithm, data).hexdigest()}  {f}\n")
        return status

    return checksum


for _name, _algorithm in (("md5sum", "md5"), ("sha1sum", "sha1"), ("sha256sum", "sha256"), ("sha512sum", "sha512")):
    APPLETS[_name] = Applet(_make_sum(_algorithm), "[FILE]...")


# --- dd and tee -------------------------------------------------------------------------
def _human(n: float) -> str:
    """busybox make_human_readable_str: one decimal and a K/M/G suffix from 1024 up."""
    value, frac, unit = int(n), 0, ""
    for suffix in "KMGTPE":
        if value < 1024:
            break
        frac = ((value % 1024) * 10 + 512) // 1024
        value //= 1024
        unit = suffix
    if frac >= 10:
        value, frac = value + 1, 0
    return f"{value}.{frac}{unit}" if unit else str(value)


@dataclass
class _DdArgs:
    infile: str | None = None
    outfile: str | None = None
    ibs: int = 512
    obs: int = 512
    bs_given: bool = False
    count: int | None = None
    skip: int = 0
    seek: int = 0
    conv: set[str] = field(default_factory=set)
    status: str = ""


def _dd_args(args: list[str]) -> _DdArgs:
    dd = _DdArgs()
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq:
            raise UsageError("")
        if key == "if":
            dd.infile = value
        elif key == "of":
            dd.outfile = value
        elif key in ("bs", "ibs", "obs"):
            n = _number(value)
            if key in ("bs", "ibs"):
                dd.ibs = n
            if key in ("bs", "obs"):
                dd.obs = n
            dd.bs_given = dd.bs_given or key == "bs"
        elif key in ("count", "skip", "seek"):
            setattr(dd, key, _number(value))
        elif key == "conv":
            dd.conv |= set(value.split(","))
            unknown = dd.conv - {"notrunc", "sync", "noerror", "fsync", "fdatasync", "swab"}
            if unknown:
                raise AppletError(f"invalid argument '{sorted(unknown)[0]}' to 'conv'")
        elif key == "status":
            dd.status = value
        elif key not in ("iflag", "oflag"):
            raise UsageError("")
    return dd


@_applet("dd", usage="[if=FILE] [of=FILE] [bs=N] [count=N] [skip=N] [seek=N] [conv=notrunc|fsync|sync]")
def _dd(ctx: Ctx, args: list[str]) -> int:
    dd = _dd_args(args)
    want = None if dd.count is None else dd.count * dd.ibs
    if dd.infile is not None and _device(ctx.path(dd.infile)) == "zero":
        if want is None:
            raise AppletError("reading /dev/zero without count= is not simulated (it never ends)")
        data = bytes(want + dd.skip * dd.ibs)
    else:
        try:
            data = ctx.read(dd.infile if dd.infile is not None else "-")
        except OSError as e:
            raise AppletError(f"can't open '{dd.infile}': {_why(e)}") from None
    data = data[dd.skip * dd.ibs :]
    if want is not None:
        data = data[:want]
    blocks = [data[i : i + dd.ibs] for i in range(0, len(data), dd.ibs)]
    in_full = sum(len(b) == dd.ibs for b in blocks)
    if "sync" in dd.conv:
        blocks = [b.ljust(dd.ibs, b"\0") for b in blocks]
    data = b"".join(blocks)
    _dd_write(ctx, dd, data)
    if dd.bs_given:
        out_full, out_part = in_full, len(blocks) - in_full
    else:
        out_full, out_part = len(data) // dd.obs, int(len(data) % dd.obs > 0)
    if dd.status != "none":
        text = f"{in_full}+{len(blocks) - in_full} records in\n{out_full}+{out_part} records out\n"
        if dd.status != "noxfer":
            # Virtual time does not pass during an exec, so the copy takes no time at all.
            text += f"{len(data)} bytes ({_human(len(data))}B) copied, 0.000000 seconds, 0B/s\n"
        ctx.err.write(_b(text))
    return 0


def _dd_write(ctx: Ctx, dd: _DdArgs, data: bytes) -> None:
    if dd.outfile is None:
        ctx.out.write(data)
        return
    if _device(ctx.path(dd.outfile)) is not None:
        ctx.write(dd.outfile, data)
        return
    path = ctx.path(dd.outfile)
    try:
        old = ctx.fs.read_bytes(path) if ctx.fs.exists(path) else b""
        offset = dd.seek * dd.obs
        new = old[:offset].ljust(offset, b"\0") + data
        if "notrunc" in dd.conv:
            new += old[len(new) :]
        ctx.fs.write_bytes(path, new)
    except OSError as e:
        raise AppletError(f"can't open '{dd.outfile}': {_why(e)}") from None


@_applet("tee", usage="[-ai] [FILE]...")
def _tee(ctx: Ctx, args: list[str]) -> int:
    opts, files = _getopt(args, "ai")
    data = ctx.stdin.read()
    status = 0
    for f in files:
        try:
            ctx.write(f, data, append="a" in opts)
        except OSError as e:
            ctx.warn(f"{f}: {_why(e)}")
            status = 1
    ctx.out.write(data)
    return status


@_applet("mktemp", usage="[-dt] [-p DIR] [TEMPLATE]")
def _mktemp(ctx: Ctx, args: list[str]) -> int:
    opts, rest = _getopt(args, "dtqup:")
    template = rest[0] if rest else "tmp.XXXXXX"
    if not template.endswith("XXXXXX"):
        raise AppletError(f"invalid template '{template}'")
    base = opts["p"][-1] if "p" in opts else ctx.env.get("TMPDIR", "/tmp")
    if "p" in opts or "t" in opts or not rest:
        template = _concat(base, template)
    rng = random.Random()
    for _ in range(100):
        path = template[:-6] + "".join(
            rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=6)
        )
        if ctx.fs.lexists(ctx.path(path)):
            continue
        try:
            if "d" in opts:
                ctx.fs.mkdir(ctx.path(path), mode=0o700)
            else:
                ctx.fs.write_bytes(ctx.path(path), b"", mode=0o600)
        except OSError as e:
            if "q" not in opts:
                ctx.warn(f"{path}: {_why(e)}")
            return 1
        ctx.print(path + "\n")
        return 0
    raise AppletError("can't create a unique name")


# --- find -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Found:
    path: str
    st: os.stat_result


Pred = Callable[[_Found], bool]


def _all(a: Pred, b: Pred) -> Pred:
    return lambda f: a(f) and b(f)


def _any(a: Pred, b: Pred) -> Pred:
    return lambda f: a(f) or b(f)


def _negate(a: Pred) -> Pred:
    return lambda f: not a(f)


def _name_of(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) or "/"


_FIND_TYPES: dict[str, Callable[[int], bool]] = {
    "f": st_mod.S_ISREG,
    "d": st_mod.S_ISDIR,
    "l": st_mod.S_ISLNK,
    "b": st_mod.S_ISBLK,
    "c": st_mod.S_ISCHR,
    "p": st_mod.S_ISFIFO,
    "s": st_mod.S_ISSOCK,
}


class _FindExpr:
    """find's expression: primaries joined by implicit -a, -o, `!` and parentheses."""

    def __init__(self, ctx: Ctx, tokens: list[str]) -> None:
        self.ctx = ctx
        self.tokens = tokens
        self.pos = 0
        self.maxdepth: int | None = None
        self.mindepth = 0
        self.acts = False

    def parse(self) -> Pred:
        if not self.tokens:
            return self._print("\n")
        pred = self._or()
        if self.pos < len(self.tokens):
            raise AppletError(f"unrecognized: {self.tokens[self.pos]}")
        return pred if self.acts else _all(pred, self._print("\n"))

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> Pred:
        pred = self._and()
        while self._peek() in ("-o", "-or"):
            self.pos += 1
            pred = _any(pred, self._and())
        return pred

    def _and(self) -> Pred:
        pred = self._unary()
        while self._peek() not in (None, "-o", "-or", ")"):
            if self._peek() in ("-a", "-and"):
                self.pos += 1
            pred = _all(pred, self._unary())
        return pred

    def _unary(self) -> Pred:
        tok = self._peek()
        if tok in ("!", "-not"):
            self.pos += 1
            return _negate(self._unary())
        if tok == "(":
            self.pos += 1
            pred = self._or()
            if self._peek() != ")":
                raise AppletError("unrecognized: (")
            self.pos += 1
            return pred
        return self._primary()

    def _arg(self, tok: str) -> str:
        if self.pos >= len(self.tokens):
            raise AppletError(f"{tok} requires an argument")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _print(self, end: str) -> Pred:
        def act(f: _Found) -> bool:
            self.ctx.print(f.path + end)
            return True

        return act

    def _primary(self) -> Pred:
        tok = self.tokens[self.pos]
        self.pos += 1
        if tok in ("-print", "-print0"):
            self.acts = True
            return self._print("\0" if tok == "-print0" else "\n")
        if tok in ("-maxdepth", "-mindepth"):
            value = self._arg(tok)
            if not value.isdigit():
                raise AppletError(f"invalid number '{value}'")
            if tok == "-maxdepth":
                self.maxdepth = int(value)
            else:
                self.mindepth = int(value)
            return lambda f: True
        if tok == "-type":
            kind = self._arg(tok)
            if kind not in _FIND_TYPES:
                raise AppletError(f"unrecognized: {kind}")
            test = _FIND_TYPES[kind]
            return lambda f: test(f.st.st_mode)
        if tok in ("-name", "-iname"):
            pattern = self._arg(tok)
            if tok == "-iname":
                return lambda f: fnmatch.fnmatchcase(_name_of(f.path).lower(), pattern.lower())
            return lambda f: fnmatch.fnmatchcase(_name_of(f.path), pattern)
        if tok == "-path":
            pattern = self._arg(tok)
            return lambda f: fnmatch.fnmatchcase(f.path, pattern)
        if tok in ("-true", "-false"):
            return lambda f: tok == "-true"
        raise AppletError(f"unrecognized: {tok}")


def _find_walk(ctx: Ctx, path: str, depth: int, expr: _FindExpr, pred: Pred, follow: bool) -> int:
    try:
        st = ctx.fs.stat(ctx.path(path)) if follow else ctx.fs.lstat(ctx.path(path))
    except OSError as e:
        ctx.warn(f"{path}: {_why(e)}")
        return 1
    if depth >= expr.mindepth:
        pred(_Found(path, st))
    if not st_mod.S_ISDIR(st.st_mode) or (expr.maxdepth is not None and depth >= expr.maxdepth):
        return 0
    try:
        names = ctx.fs.listdir(ctx.path(path))
    except OSError as e:
        ctx.warn(f"{path}: {_why(e)}")
        return 1
    status = 0
    for name in names:  # sorted, where a real readdir order is arbitrary
        status |= _find_walk(ctx, _concat(path, name), depth + 1, expr, pred, follow)
    return status


@_applet("find", usage="[-HL] [PATH]... [OPTIONS] [ACTIONS]")
def _find(ctx: Ctx, args: list[str]) -> int:
    follow = False
    while args and args[0] in ("-H", "-L", "-P"):
        follow = args[0] == "-L"
        args = args[1:]
    paths: list[str] = []
    while args and not (args[0].startswith("-") and len(args[0]) > 1) and args[0] not in ("!", "("):
        paths.append(args.pop(0))
    expr = _FindExpr(ctx, args)
    pred = expr.parse()
    status = 0
    for path in paths or ["."]:
        status |= _find_walk(ctx, path, 0, expr, pred, follow)
    return status


# --- tar --------------------------------------------------------------------------------
@dataclass
class _TarState:
    follow: bool
    verbose: Sink | None
    warned_root: bool = False
    status: int = 0


def _tar_add(ctx: Ctx, tf: tarfile.TarFile, name: str, state: _TarState) -> None:
    path = ctx.path(name)
    try:
        st = ctx.fs.stat(path) if state.follow else ctx.fs.lstat(path)
    except OSError as e:
        ctx.warn(f"{name}: {_why(e)}")
        state.status = 1
        return
    arcname = name.lstrip("/")
    if arcname != name and not state.warned_root:
        ctx.warn("removing leading '/' from member names")
        state.warned_root = True
    info = tarfile.TarInfo(arcname or ".")
    info.mode, info.mtime = st.st_mode & 0o7777, int(st.st_mtime)
    info.uid, info.gid = _uid(st.st_uid), _gid(st.st_gid)
    info.uname = _names(ctx, "/etc/passwd").get(info.uid, "")
    info.gname = _names(ctx, "/etc/group").get(info.gid, "")
    data: bytes | None = None
    if st_mod.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, ctx.fs.readlink(path)
    elif st_mod.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif st_mod.S_ISREG(st.st_mode):
        data = ctx.fs.read_bytes(path)
        info.size = len(data)
    else:
        ctx.warn(f"{name}: unknown file type")
        state.status = 1
        return
    try:
        tf.addfile(info, io.BytesIO(data) if data is not None else None)
    except ValueError as e:
        ctx.warn(f"{name}: {e}")
        state.status = 1
        return
    if state.verbose is not None:
        state.verbose.write(_b(info.name + ("/" if info.isdir() and not info.name.endswith("/") else "") + "\n"))
    if info.isdir():
        for child in ctx.fs.listdir(path):
            _tar_add(ctx, tf, _concat(name, child), state)


@_applet("tar", usage="-c [-zvh] [-f ARCHIVE] [-C DIR] FILE...")
def _tar(ctx: Ctx, args: list[str]) -> int:
    if args and not args[0].startswith("-"):
        args = ["-" + args[0], *args[1:]]  # old style: `tar cf - dir`
    opts, files = _getopt(args, "cxtzvhOf:C:")
    if "c" not in opts or opts.keys() & {"x", "t"}:
        raise AppletError("only creating archives (-c) is simulated")
    archive = opts["f"][-1] if "f" in opts else "-"
    out_ctx = ctx  # the archive is opened before -C changes directory
    if "C" in opts:
        base = ctx.path(opts["C"][-1])
        if not ctx.fs.is_dir(base):
            raise AppletError(f"can't change directory to '{opts['C'][-1]}': {os.strerror(errno.ENOENT)}")
        ctx = dataclasses.replace(ctx, cwd=base)
    if not files:
        raise AppletError("empty archive")
    verbose = (ctx.err if archive == "-" else ctx.out) if "v" in opts else None
    state = _TarState(follow="h" in opts, verbose=verbose)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if "z" in opts else "w", format=tarfile.USTAR_FORMAT) as tf:
        for name in files:
            _tar_add(ctx, tf, name, state)
    try:
        out_ctx.write(archive, buf.getvalue())
    except OSError as e:
        raise AppletError(f"can't open '{archive}': {_why(e)}") from None
    return state.status


# --- sh: syntax -------------------------------------------------------------------------
@dataclass
class Part:
    """A piece of a word: literal text, a parameter, a command substitution or arithmetic."""

    kind: str  # lit | param | cmd | arith
    text: str = ""  # the literal, the parameter name or the arithmetic source
    quoted: bool = False
    op: str = ""  # parameter operator: ":-", "#", "len", ...
    arg: Word | None = None
    body: Seq | None = None


@dataclass
class Word:
    parts: list[Part]

    def plain(self) -> str | None:
        """The text of a word that is one unquoted literal: how reserved words are told apart."""
        if len(self.parts) == 1 and self.parts[0].kind == "lit" and not self.parts[0].quoted:
            return self.parts[0].text
        return None


@dataclass
class Redir:
    fd: int
    op: str
    target: Word
    body: Word | None = None  # a here-document's text


@dataclass
class Simple:
    assigns: list[tuple[str, Word]]
    words: list[Word]
    redirs: list[Redir]


@dataclass
class If:
    branches: list[tuple[Seq, Seq]]
    orelse: Seq | None
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Loop:
    cond: Seq
    body: Seq
    until: bool
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class For:
    var: str
    items: list[Word] | None
    body: Seq
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Group:
    body: Seq
    subshell: bool
    redirs: list[Redir] = field(default_factory=list)


Command = Simple | If | Loop | For | Group


@dataclass
class Pipeline:
    cmds: list[Command]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]]


@dataclass
class Seq:
    items: list[AndOr]


class ShSyntax(Exception):
    pass


@dataclass
class Tok:
    kind: str  # word | op | nl | eof
    text: str = ""
    word: Word | None = None
    fd: int | None = None


_OPS = ("&&", "||", ";;", "<<-", "<<", ">>", "<&", ">&", "<>", ">|", "|", ";", "&", "(", ")", "<", ">")
_REDIR_OPS = {"<<-", "<<", ">>", "<&", ">&", "<>", ">|", "<", ">"}
_META = " \t\n;&|<>()"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENDERS = {"then", "else", "elif", "fi", "do", "done", "}"}
_PARAM_OPS = (":-", ":=", ":+", ":?", "-", "=", "+", "?", "##", "#", "%%", "%")


class Parser:
    """Recursive descent over the source text; the lexer runs on demand because what a
    character means depends on where the parser is (here-documents, `$(...)`)."""

    def __init__(self, src: str, pos: int = 0) -> None:
        self.src = src
        self.pos = pos
        self._peeked: Tok | None = None
        self._heredocs: list[tuple[Redir, str, bool, bool]] = []

    # --- tokens ---
    def peek(self) -> Tok:
        if self._peeked is None:
            self._peeked = self._lex()
        return self._peeked

    def next(self) -> Tok:
        tok = self.peek()
        self._peeked = None
        return tok

    def _lex(self) -> Tok:
        src = self.src
        while self.pos < len(src):
            if src[self.pos] in " \t":
                self.pos += 1
            elif src.startswith("\\\n", self.pos):
                self.pos += 2
            elif src[self.pos] == "#":
                end = src.find("\n", self.pos)
                self.pos = len(src) if end < 0 else end
            else:
                break
        if self.pos >= len(src):
            self._read_heredocs()
            return Tok("eof")
        if src[self.pos] == "\n":
            self.pos += 1
            self._read_heredocs()
            return Tok("nl", "newline")
        for op in _OPS:
            if src.startswith(op, self.pos):
                self.pos += len(op)
                return Tok("op", op)
        word = Word(self._parts(_META, quoted=False))
        text = word.plain()
        if text is not None and text.isdigit() and self.pos < len(src) and src[self.pos] in "<>":
            for op in _OPS:
                if op in _REDIR_OPS and src.startswith(op, self.pos):
                    self.pos += len(op)
                    return Tok("op", op, fd=int(text))
        return Tok("word", text or "", word)

    def _parts(self, stop: str, *, quoted: bool) -> list[Part]:
        """Word pieces up to an unquoted character in `stop` (left unread)."""
        parts: list[Part] = []
        lit: list[str] = []

        def flush() -> None:
            if lit:
                parts.append(Part("lit", "".join(lit), quoted))
                lit.clear()

        src = self.src
        while self.pos < len(src) and src[self.pos] not in stop:
            c = src[self.pos]
            if c == "\\":
                nxt = src[self.pos + 1 : self.pos + 2]
                self.pos += 2
                if nxt != "\n":
                    flush()
                    parts.append(Part("lit", nxt or "\\", True))
            elif c == "'":
                end = src.find("'", self.pos + 1)
                if end < 0:
                    raise ShSyntax("unterminated quoted string")
                flush()
                parts.append(Part("lit", src[self.pos + 1 : end], True))
                self.pos = end + 1
            elif c == '"':
                self.pos += 1
                flush()
                # An empty "" is still a field; an empty "$@" is none.
                parts.extend(self._quoted(heredoc=False) or [Part("lit", "", True)])
            elif c in "$`":
                flush()
                parts.append(self._dollar(quoted) if c == "$" else self._backtick(quoted))
            else:
                lit.append(c)
                self.pos += 1
        flush()
        return parts

    def _quoted(self, *, heredoc: bool) -> list[Part]:
        """Inside double quotes (or a here-document, which ends with the text): only $, `
        and backslash are special."""
        parts: list[Part] = []
        lit: list[str] = []
        src = self.src
        escapable = "$`\\\n" if heredoc else '$`"\\\n'
        while True:
            if self.pos >= len(src):
                if heredoc:
                    break
                raise ShSyntax("unterminated quoted string")
            c = src[self.pos]
            if c == '"' and not heredoc:
                self.pos += 1
                break
            if c == "\\" and src[self.pos + 1 : self.pos + 2] and src[self.pos + 1] in escapable:
                if src[self.pos + 1] != "\n":
                    lit.append(src[self.pos + 1])
                self.pos += 2
            elif c in "$`":
                if lit:
                    parts.append(Part("lit", "".join(lit), True))
                    lit.clear()
                parts.append(self._dollar(True) if c == "$" else self._backtick(True))
            else:
                lit.append(c)
                self.pos += 1
        if lit:
            parts.append(Part("lit", "".join(lit), True))
        return parts

    def _dollar(self, quoted: bool) -> Part:
        src = self.src
        self.pos += 1
        c = src[self.pos : self.pos + 1]
        if c == "{":
            return self._brace(quoted)
        if src.startswith("((", self.pos):
            return Part("arith", self._arith_text(), quoted)
        if c == "(":
            self.pos += 1
            return Part("cmd", quoted=quoted, body=self._subparse())
        m = _NAME.match(src, self.pos)
        if m:
            self.pos = m.end()
            return Part("param", m.group(), quoted)
        if c and (c.isdigit() or c in "@*#?$!-"):
            self.pos += 1
            return Part("param", c, quoted)
        return Part("lit", "$", quoted)

    def _arith_text(self) -> str:
        depth, i = 0, self.pos + 2
        while i < len(self.src):
            if self.src[i] == "(":
                depth += 1
            elif self.src[i] == ")":
                if depth == 0:
                    if not self.src.startswith("))", i):
                        break
                    text = self.src[self.pos + 2 : i]
                    self.pos = i + 2
                    return text
                depth -= 1
            i += 1
        raise ShSyntax("missing '))'")

    def _param_name(self) -> str:
        m = _NAME.match(self.src, self.pos) or re.compile(r"\d+|[@*#?$!-]").match(self.src, self.pos)
        if not m:
            raise ShSyntax("bad substitution")
        self.pos = m.end()
        return m.group()

    def _close_brace(self) -> None:
        if not self.src.startswith("}", self.pos):
            raise ShSyntax("bad substitution")
        self.pos += 1

    def _brace(self, quoted: bool) -> Part:
        self.pos += 1
        if self.src.startswith("#", self.pos) and not self.src.startswith("#}", self.pos):
            self.pos += 1
            name = self._param_name()
            self._close_brace()
            return Part("param", name, quoted, op="len")
        name = self._param_name()
        for op in _PARAM_OPS:
            if self.src.startswith(op, self.pos):
                self.pos += len(op)
                # Outer double quotes do not quote the word inside ${...}: "${v%%:*}" is a pattern.
                arg = Word(self._parts("}", quoted=False))
                self._close_brace()
                return Part("param", name, quoted, op=op, arg=arg)
        self._close_brace()
        return Part("param", name, quoted)

    def _subparse(self) -> Seq:
        sub = Parser(self.src, self.pos)
        body = sub.parse_seq({")"})
        tok = sub.next()
        if tok.kind != "op" or tok.text != ")":
            raise ShSyntax('unexpected end of file (expecting ")")')
        self.pos = sub.pos
        return body

    def _backtick(self, quoted: bool) -> Part:
        src, i, buf = self.src, self.pos + 1, []
        while i < len(src) and src[i] != "`":
            if src[i] == "\\" and src[i + 1 : i + 2] in ("`", "\\", "$"):
                buf.append(src[i + 1])
                i += 2
            else:
                buf.append(src[i])
                i += 1
        if i >= len(src):
            raise ShSyntax("unterminated `")
        self.pos = i + 1
        sub = Parser("".join(buf))
        body = sub.parse_seq(set())
        if sub.peek().kind != "eof":
            raise _unexpected(sub.peek())
        return Part("cmd", quoted=quoted, body=body)

    def _read_heredocs(self) -> None:
        for redir, delim, strip, literal in self._heredocs:
            lines = []
            while self.pos < len(self.src):
                end = self.src.find("\n", self.pos)
                line = self.src[self.pos :] if end < 0 else self.src[self.pos : end]
                self.pos = len(self.src) if end < 0 else end + 1
                if strip:
                    line = line.lstrip("\t")
                if line == delim:
                    break
                lines.append(line + "\n")
            text = "".join(lines)
            redir.body = Word([Part("lit", text, True)]) if literal else Word(Parser(text)._quoted(heredoc=True))
        self._heredocs.clear()

    # --- grammar ---
    def _is_word(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.word is not None and tok.word.plain() == text

    def _skip_newlines(self) -> None:
        while self.peek().kind == "nl":
            self.next()

    def _expect_word(self, text: str) -> None:
        tok = self.next()
        if tok.kind != "word" or tok.word is None or tok.word.plain() != text:
            raise _unexpected(tok, text)

    def next_item(self) -> AndOr | None:
        """The next top-level command: a script runs (and fails) one command at a time."""
        self._skip_newlines()
        if self.peek().kind == "eof":
            return None
        item = self.parse_andor()
        tok = self.peek()
        if tok.kind == "op" and tok.text in (";", "&"):
            self.next()
        elif tok.kind not in ("nl", "eof"):
            raise _unexpected(tok)
        return item

    def parse_seq(self, ends: set[str]) -> Seq:
        items: list[AndOr] = []
        while True:
            self._skip_newlines()
            if self._at_end(ends):
                break
            items.append(self.parse_andor())
            tok = self.peek()
            if tok.kind == "op" and tok.text in (";", "&"):
                self.next()
            elif tok.kind != "nl":
                break
        return Seq(items)

    def _at_end(self, ends: set[str]) -> bool:
        tok = self.peek()
        if tok.kind == "op":
            return tok.text in ends and tok.fd is None
        return tok.kind == "eof" or (tok.kind == "word" and tok.word is not None and tok.word.plain() in ends)

    def _body(self, ends: set[str]) -> Seq:
        seq = self.parse_seq(ends)
        if not seq.items:
            raise _unexpected(self.peek())
        return seq

    def parse_andor(self) -> AndOr:
        first = self.parse_pipeline()
        rest: list[tuple[str, Pipeline]] = []
        while (tok := self.peek()).kind == "op" and tok.text in ("&&", "||"):
            self.next()
            self._skip_newlines()
            rest.append((tok.text, self.parse_pipeline()))
        return AndOr(first, rest)

    def parse_pipeline(self) -> Pipeline:
        negate = self._is_word("!")
        if negate:
            self.next()
        cmds = [self.parse_command()]
        while (tok := self.peek()).kind == "op" and tok.text == "|":
            self.next()
            self._skip_newlines()
            cmds.append(self.parse_command())
        return Pipeline(cmds, negate)

    def parse_command(self) -> Command:
        tok = self.peek()
        word = tok.word.plain() if tok.kind == "word" and tok.word is not None else None
        cmd: Command
        if tok.kind == "op" and tok.text == "(":
            self.next()
            cmd = Group(self._body({")"}), subshell=True)
            tok = self.next()
            if tok.text != ")":
                raise _unexpected(tok, ")")
        elif word == "{":
            self.next()
            cmd = Group(self._body({"}"}), subshell=False)
            self._expect_word("}")
        elif word == "if":
            cmd = self._parse_if()
        elif word in ("while", "until"):
            self.next()
            cond = self._body({"do"})
            self._expect_word("do")
            cmd = Loop(cond, self._body({"done"}), until=word == "until")
            self._expect_word("done")
        elif word == "for":
            cmd = self._parse_for()
        elif word in ("case", "function", "select", "[["):
            raise ShSyntax(f"'{word}' is not supported by the simulated shell")
        elif word in _ENDERS:
            raise _unexpected(tok)
        else:
            return self._parse_simple()
        while self.peek().kind == "op" and self.peek().text in _REDIR_OPS:
            cmd.redirs.append(self._redir())
        return cmd

    def _parse_if(self) -> If:
        self.next()
        branches: list[tuple[Seq, Seq]] = []
        orelse = None
        while True:
            cond = self._body({"then"})
            self._expect_word("then")
            branches.append((cond, self._body({"elif", "else", "fi"})))
            tok = self.next()
            kw = tok.word.plain() if tok.word is not None else None
            if kw == "elif":
                continue
            if kw == "else":
                orelse = self._body({"fi"})
                self._expect_word("fi")
            elif kw != "fi":
                raise _unexpected(tok, "fi")
            return If(branches, orelse)

    def _parse_for(self) -> For:
        self.next()
        tok = self.next()
        name = tok.word.plain() if tok.word is not None else None
        if name is None or not _NAME.fullmatch(name):
            raise ShSyntax("bad for loop variable")
        self._skip_newlines()
        items: list[Word] | None = None
        if self._is_word("in"):
            self.next()
            items = []
            while (tok := self.peek()).kind == "word" and tok.word is not None:
                items.append(tok.word)
                self.next()
        if self.peek().kind == "op" and self.peek().text == ";":
            self.next()
        self._skip_newlines()
        self._expect_word("do")
        body = self._body({"done"})
        self._expect_word("done")
        return For(name, items, body)

    def _redir(self) -> Redir:
        op = self.next()
        target = self.next()
        if target.kind != "word" or target.word is None:
            raise _unexpected(target)
        fd = op.fd if op.fd is not None else (0 if op.text in ("<", "<<", "<<-", "<&", "<>") else 1)
        redir = Redir(fd, op.text, target.word)
        if op.text in ("<<", "<<-"):
            delim = "".join(p.text if p.kind == "lit" else "$" + p.text for p in target.word.parts)
            literal = any(p.quoted for p in target.word.parts)
            self._heredocs.append((redir, delim, op.text == "<<-", literal))
        return redir

    def _parse_simple(self) -> Simple:
        cmd = Simple([], [], [])
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in _REDIR_OPS:
                cmd.redirs.append(self._redir())
                continue
            if tok.kind != "word" or tok.word is None:
                break
            self.next()
            assign = None if cmd.words else _assignment(tok.word)
            if assign is not None:
                cmd.assigns.append(assign)
            else:
                cmd.words.append(tok.word)
        if not (cmd.words or cmd.assigns or cmd.redirs):
            raise _unexpected(self.peek())
        if len(cmd.words) == 1 and self.peek().kind == "op" and self.peek().text == "(":
            raise ShSyntax("functions are not supported by the simulated shell")
        return cmd


def _unexpected(tok: Tok, expecting: str | None = None) -> ShSyntax:
    if tok.kind == "eof":
        return ShSyntax("unexpected end of file" + (f' (expecting "{expecting}")' if expecting else ""))
    text = tok.text if tok.kind != "word" or tok.word is None else "".join(p.text for p in tok.word.parts)
    return ShSyntax(f'unexpected "{text}"' if tok.kind != "nl" else "unexpected newline")


def _assignment(word: Word) -> tuple[str, Word] | None:
    first = word.parts[0] if word.parts else None
    if first is None or first.kind != "lit" or first.quoted:
        return None
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=", first.text)
    if not m:
        return None
    rest = first.text[m.end() :]
    return m.group(1), Word(([Part("lit", rest)] if rest else []) + word.parts[1:])


# --- sh: execution ----------------------------------------------------------------------
class ShellExit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ShellError(Exception):
    """Fatal in a non-interactive shell: `$0: message`, then exit with `code`."""

    def __init__(self, msg: str, code: int = 2) -> None:
        super().__init__(msg)
        self.code = code


class RedirError(Exception):
    pass


class _LoopCtl(Exception):
    def __init__(self, kind: str, levels: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.levels = levels


@dataclass
class IO:
    stdin: Input
    out: Sink
    err: Sink


@dataclass
class _Seg:
    """Expanded text, remembering whether quotes protect it from splitting and globbing."""

    text: str
    quoted: bool
    expanded: bool
    brk: bool = False  # a field break between the words of "$@"


Field = list[tuple[str, bool]]  # (text, may glob)
_PIDS = itertools.count(100)
_SPECIAL_BUILTINS = {
    "break",
    "continue",
    ".",
    "source",
    "eval",
    "exec",
    "exit",
    "export",
    "readonly",
    "set",
    "shift",
    "trap",
    "unset",
}
_OPTION_NAMES = {"errexit": "e", "nounset": "u", "xtrace": "x", "noglob": "f", "verbose": "v", "pipefail": "pipefail"}


def _shquote(text: str) -> str:
    if text and re.fullmatch(r"[\w@%+=:,./-]+", text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _join(base: str, name: str) -> str:
    return name if not base else _concat(base, name)


def _ash_why(e: OSError, missing: str) -> str:
    """ash words a missing file its own way ("nonexistent directory", "no such file")."""
    return missing if e.errno in (errno.ENOENT, errno.ENOTDIR) else _why(e)


def _trim(value: str, pattern: str, op: str) -> str:
    """${v#p} ${v##p} ${v%p} ${v%%p}: shortest or longest prefix or suffix matching p."""
    n = len(value)
    if op in ("#", "##"):
        for i in range(n + 1) if op == "#" else range(n, -1, -1):
            if fnmatch.fnmatchcase(value[:i], pattern):
                return value[i:]
    else:
        for i in range(n, -1, -1) if op == "%" else range(n + 1):
            if fnmatch.fnmatchcase(value[i:], pattern):
                return value[:i]
    return value


def _c_div(a: int, b: int, *, mod: bool) -> int:
    if b == 0:
        raise ShellError("arithmetic: division by zero")
    q = abs(a) // abs(b)
    q = q if (a >= 0) == (b >= 0) else -q
    return a - b * q if mod else q


_ARITH_BINOPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: _c_div(a, b, mod=False),
    ast.Mod: lambda a, b: _c_div(a, b, mod=True),
    ast.Pow: lambda a, b: a**b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
}
_ARITH_CMPS: dict[type, Callable[[int, int], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


class Shell:
    """One ash process: variables, positional parameters, options, cwd and `$?`."""

    def __init__(self, ctx: Ctx, arg0: str, params: list[str]) -> None:
        self.fs = ctx.fs
        self.vars = dict(ctx.env)
        self.exported = set(ctx.env)
        self.vars.setdefault("PWD", ctx.cwd)
        self.cwd = ctx.cwd
        self.arg0 = arg0
        self.params = params
        self.status = 0
        self.opts: set[str] = set()
        self.no_errexit = 0  # >0 while running a condition, where `set -e` does not apply
        self.loops = 0
        self.traps: dict[str, str] = {}
        self.pid = next(_PIDS)
        self.io = IO(ctx.stdin, ctx.out, ctx.err)  # the streams of the command being expanded
        self.subst_status: int | None = None

    def fork(self) -> Shell:
        sub = copy.copy(self)
        sub.vars, sub.exported, sub.params = dict(self.vars), set(self.exported), list(self.params)
        sub.opts, sub.traps = set(self.opts), {}
        return sub

    def say(self, io: IO, msg: str) -> None:
        io.err.write(_b(f"{self.arg0}: {msg}\n"))

    def abspath(self, p: str) -> str:
        return p if not p or p.startswith("/") else posixpath.join(self.cwd, p)

    # --- running ---
    def run_script(self, src: str, io: IO) -> int:
        parser = Parser(src)
        try:
            while True:
                try:
                    item = parser.next_item()
                except ShSyntax as e:
                    self.say(io, f"syntax error: {e}")
                    self.status = 2
                    break
                if item is None:
                    break
                self.exec_andor(item, io)
        except ShellExit as e:
            self.status = e.code
        except ShellError as e:
            self.say(io, str(e))
            self.status = e.code
        except _LoopCtl:
            pass
        return self._on_exit(io)

    def subshell(self, body: Command | Seq, io: IO) -> int:
        """Run `body` in this (forked) shell: `exit` and fatal errors end only the subshell."""
        try:
            self.status = self.exec_seq(body, io) if isinstance(body, Seq) else self.exec_cmd(body, io)
        except ShellExit as e:
            self.status = e.code
        except ShellError as e:
            self.say(io, str(e))
            self.status = e.code
        except _LoopCtl:
            pass
        return self._on_exit(io)

    def _on_exit(self, io: IO) -> int:
        action = self.traps.pop("EXIT", None)
        if action:
            status = self.status
            try:
                self.eval(action, io)
            except ShellExit as e:
                return e.code
            except ShellError as e:
                self.say(io, str(e))
            self.status = status
        return self.status

    def eval(self, src: str, io: IO) -> int:
        parser = Parser(src)
        status = 0
        while True:
            try:
                item = parser.next_item()
            except ShSyntax as e:
                raise ShellError(f"syntax error: {e}") from None
            if item is None:
                return status
            status = self.exec_andor(item, io)

    def exec_seq(self, seq: Seq, io: IO) -> int:
        status = 0
        for item in seq.items:
            status = self.exec_andor(item, io)
        return status

    def exec_andor(self, item: AndOr, io: IO) -> int:
        status = self._pipeline(item.first, io, last=not item.rest)
        for i, (op, pipe) in enumerate(item.rest):
            if (op == "&&") == (status == 0):
                status = self._pipeline(pipe, io, last=i == len(item.rest) - 1)
        return status

    def _pipeline(self, pipe: Pipeline, io: IO, *, last: bool) -> int:
        # `set -e` ignores all but the last command of && / || lists, and negated pipelines.
        guarded = not last or pipe.negate
        self.no_errexit += guarded
        try:
            status = self._run_pipeline(pipe, io)
        finally:
            self.no_errexit -= guarded
        if pipe.negate:
            status = int(status == 0)
        self.status = status
        if status and "e" in self.opts and not self.no_errexit and not guarded:
            raise ShellExit(status)
        return status

    def _run_pipeline(self, pipe: Pipeline, io: IO) -> int:
        if len(pipe.cmds) == 1:
            return self.exec_cmd(pipe.cmds[0], io)
        # Each stage runs in a subshell, one after the other, its output the next one's input.
        stdin, statuses = io.stdin, []
        for i, cmd in enumerate(pipe.cmds):
            out: Sink = io.out if i == len(pipe.cmds) - 1 else BufferSink()
            statuses.append(self.fork().subshell(cmd, IO(stdin, out, io.err)))
            if isinstance(out, BufferSink):
                stdin = Input(bytes(out.data))
        if "pipefail" in self.opts:
            return next((s for s in reversed(statuses) if s), 0)
        return statuses[-1]

    def exec_cmd(self, cmd: Command, io: IO) -> int:
        self.io = io
        if isinstance(cmd, Simple):
            return self.exec_simple(cmd, io)
        try:
            io = self.redirect(cmd.redirs, io)
        except RedirError as e:
            self.say(io, str(e))
            return 2
        self.io = io
        if isinstance(cmd, Group):
            return self.fork().subshell(cmd.body, io) if cmd.subshell else self.exec_seq(cmd.body, io)
        if isinstance(cmd, If):
            for cond, body in cmd.branches:
                if self._condition(cond, io) == 0:
                    return self.exec_seq(body, io)
            return self.exec_seq(cmd.orelse, io) if cmd.orelse else 0
        if isinstance(cmd, Loop):
            return self._exec_while(cmd, io)
        return self._exec_for(cmd, io)

    def _condition(self, seq: Seq, io: IO) -> int:
        self.no_errexit += 1
        try:
            return self.exec_seq(seq, io)
        finally:
            self.no_errexit -= 1

    def _loop_body(self, body: Seq, io: IO) -> tuple[int, bool]:
        """The body's status, and whether `break` ended the loop."""
        try:
            return self.exec_seq(body, io), False
        except _LoopCtl as ctl:
            if ctl.levels > 1:
                ctl.levels -= 1
                raise
            return 0, ctl.kind == "break"

    def _exec_while(self, cmd: Loop, io: IO) -> int:
        status = 0
        self.loops += 1
        try:
            for _ in range(LOOP_LIMIT):
                if (self._condition(cmd.cond, io) == 0) == cmd.until:
                    return status
                status, stop = self._loop_body(cmd.body, io)
                if stop:
                    return status
        finally:
            self.loops -= 1
        raise ShellError(f"loop still running after {LOOP_LIMIT} rounds: time does not pass inside a simulated exec")

    def _exec_for(self, cmd: For, io: IO) -> int:
        values = self.expand_words(cmd.items) if cmd.items is not None else list(self.params)
        status = 0
        self.loops += 1
        try:
            for value in values:
                self.vars[cmd.var] = value
                status, stop = self._loop_body(cmd.body, io)
                if stop:
                    break
        finally:
            self.loops -= 1
        return status

    def exec_simple(self, cmd: Simple, io: IO) -> int:
        self.subst_status = None
        words = self.expand_words(cmd.words)
        assigns = [(name, self.expand_str(w)) for name, w in cmd.assigns]
        if "x" in self.opts and (words or assigns):
            shown = [f"{n}={_shquote(v)}" for n, v in assigns] + [_shquote(w) for w in words]
            io.err.write(_b("+ " + " ".join(shown) + "\n"))
        if not words or words == ["exec"]:
            for name, value in assigns:
                self.vars[name] = value
            try:
                redirected = self.redirect(cmd.redirs, io)
            except RedirError as e:
                self.say(io, str(e))
                if words:
                    raise ShellExit(2) from None
                return 2
            if words:  # `exec >file`: the redirections stay for the rest of the script
                io.stdin, io.out, io.err = redirected.stdin, redirected.out, redirected.err
            return self.subst_status or 0
        try:
            io = self.redirect(cmd.redirs, io)
        except RedirError as e:
            self.say(io, str(e))
            return 2
        return self.invoke(words, assigns, io)

    def invoke(self, words: list[str], assigns: list[tuple[str, str]], io: IO) -> int:
        builtin = _BUILTINS.get(words[0])
        if builtin is not None and words[0] in _SPECIAL_BUILTINS:
            self.vars.update(assigns)
            return builtin(self, words[1:], io)
        if builtin is not None:
            # `IFS=: read a b`: before a regular builtin, assignments last for that command only.
            saved = {name: self.vars.get(name) for name, _ in assigns}
            self.vars.update(assigns)
            try:
                return builtin(self, words[1:], io)
            finally:
                for name, old in saved.items():
                    if old is None:
                        self.vars.pop(name, None)
                    else:
                        self.vars[name] = old
        env = {k: v for k, v in self.vars.items() if k in self.exported} | dict(assigns)
        return _exec(words, Ctx(self.fs, io.stdin, io.out, io.err, env, self.cwd, prefix=self.arg0))

    # --- redirections ---
    def redirect(self, redirs: list[Redir], io: IO) -> IO:
        if not redirs:
            return io
        fds: dict[int, Input | Sink] = {0: io.stdin, 1: io.out, 2: io.err}
        for r in redirs:
            fds[r.fd] = self._open(r, fds)
        stdin, out, err = fds[0], fds[1], fds[2]
        return IO(
            stdin if isinstance(stdin, Input) else Input(),
            out if isinstance(out, Sink) else NullSink(),
            err if isinstance(err, Sink) else NullSink(),
        )

    def _open(self, r: Redir, fds: dict[int, Input | Sink]) -> Input | Sink:
        if r.body is not None:
            return Input(_b(self.expand_str(r.body)))
        target = self.expand_str(r.target)
        if r.op in (">&", "<&"):
            if target == "-":
                return NullSink() if r.op == ">&" else Input()
            if target.isdigit() and int(target) in fds:
                return fds[int(target)]
            raise RedirError(f"{target}: Bad file descriptor")
        path = self.abspath(target)
        dev = _device(path)
        if r.op in ("<", "<>"):
            if dev is not None:
                return fds[0] if dev == "stdin" else Input()
            try:
                return Input(self.fs.read_bytes(path))
            except OSError as e:
                raise RedirError(f"can't open {target}: {_ash_why(e, 'no such file')}") from None
        if dev in ("stdout", "stderr"):
            return fds[1 if dev == "stdout" else 2]
        if dev is not None:
            return NullSink()
        try:
            return FileSink(self.fs, path, append=r.op == ">>")
        except OSError as e:
            raise RedirError(f"can't create {target}: {_ash_why(e, 'nonexistent directory')}") from None

    # --- expansion ---
    def expand_words(self, words: list[Word]) -> list[str]:
        fields: list[str] = []
        for word in words:
            for f in self._split(self._segments(word)):
                fields.extend(self._glob(f))
        return fields

    def expand_str(self, word: Word) -> str:
        """Expansion without field splitting or globbing (assignments, redirection targets)."""
        return "".join(" " if s.brk else s.text for s in self._segments(word))

    def _segments(self, word: Word) -> list[_Seg]:
        segs: list[_Seg] = []
        for p in word.parts:
            if p.kind == "lit":
                segs.append(_Seg(p.text, p.quoted, False))
            elif p.kind == "param":
                segs.extend(self._param_segs(p))
            elif p.kind == "cmd" and p.body is not None:
                segs.append(_Seg(self._substitute(p.body), p.quoted, True))
            else:
                segs.append(_Seg(str(self._arith(p.text)), p.quoted, True))
        return segs

    def _param_segs(self, p: Part) -> list[_Seg]:
        if p.text == "@" and not p.op and p.quoted:
            segs: list[_Seg] = []
            for i, arg in enumerate(self.params):
                if i:
                    segs.append(_Seg("", True, True, brk=True))
                segs.append(_Seg(arg, True, True))
            return segs
        value, quoted = self._param(p)
        return [_Seg(value, p.quoted or quoted, True)]

    def _lookup(self, name: str) -> str | None:
        special: dict[str, Callable[[], str]] = {
            "#": lambda: str(len(self.params)),
            "?": lambda: str(self.status),
            "$": lambda: str(self.pid),
            "!": lambda: "",
            "-": lambda: "".join(sorted(o for o in self.opts if len(o) == 1)),
            "0": lambda: self.arg0,
            "@": lambda: " ".join(self.params),
            "*": lambda: self.vars.get("IFS", " ")[:1].join(self.params),
        }
        if name in special:
            return special[name]()
        if name.isdigit():
            return self.params[int(name) - 1] if 0 < int(name) <= len(self.params) else None
        return self.vars.get(name)

    def _check_set(self, name: str, value: str | None) -> None:
        if value is None and "u" in self.opts and name not in ("@", "*"):
            raise ShellError(f"{name}: parameter not set")

    def _param(self, p: Part) -> tuple[str, bool]:
        """A parameter's value, and whether it came from a quoted default word."""
        value = self._lookup(p.text)
        if p.op in ("", "len"):
            self._check_set(p.text, value)
            return (str(len(value or "")) if p.op else value or ""), False
        kind = p.op.lstrip(":")
        if kind in ("-", "=", "+", "?"):
            unset = value is None or (p.op.startswith(":") and value == "")
            if unset == (kind == "+"):
                return ("" if kind == "+" else value or ""), False
            segs = self._segments(p.arg) if p.arg is not None else []
            arg = "".join(s.text for s in segs)
            if kind == "=":
                if not _NAME.fullmatch(p.text):
                    raise ShellError(f"{p.text}: bad variable name")
                self.vars[p.text] = arg
            if kind == "?":
                raise ShellError(f"{p.text}: {arg or 'parameter not set'}")
            return arg, any(s.quoted for s in segs)
        self._check_set(p.text, value)
        segs = self._segments(p.arg) if p.arg is not None else []
        pattern = "".join(_glob_escape(s.text) if s.quoted else s.text for s in segs)
        return _trim(value or "", pattern, p.op), False

    def _substitute(self, body: Seq) -> str:
        out = BufferSink()
        self.subst_status = self.fork().subshell(body, IO(self.io.stdin, out, self.io.err))
        return _s(bytes(out.data)).rstrip("\n")

    def _arith(self, text: str) -> int:
        expr = re.sub(r"\$\{?([A-Za-z_]\w*|[0-9#?$])\}?", lambda m: self._lookup(m.group(1)) or "0", text)
        expr = re.sub(r"!(?!=)", " not ", expr.replace("&&", " and ").replace("||", " or "))
        try:
            tree = ast.parse(expr.strip() or "0", mode="eval")
        except SyntaxError:
            raise ShellError(f"arithmetic syntax error: {text.strip()}") from None
        return self._arith_node(tree.body)

    def _arith_node(self, node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            n, ok = _c_number(self.vars.get(node.id) or "0")
            if not ok:
                raise ShellError(f"arithmetic syntax error: {node.id}")
            return n
        if isinstance(node, ast.UnaryOp):
            v = self._arith_node(node.operand)
            ops: dict[type, int] = {ast.USub: -v, ast.UAdd: v, ast.Not: int(not v), ast.Invert: ~v}
            if type(node.op) in ops:
                return ops[type(node.op)]
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH_BINOPS:
            return _ARITH_BINOPS[type(node.op)](self._arith_node(node.left), self._arith_node(node.right))
        if isinstance(node, ast.BoolOp):
            want_all = isinstance(node.op, ast.And)
            for value in node.values:
                if bool(self._arith_node(value)) != want_all:
                    return int(not want_all)
            return int(want_all)
        if isinstance(node, ast.Compare) and all(type(op) in _ARITH_CMPS for op in node.ops):
            left = self._arith_node(node.left)
            for op, right in zip(node.ops, node.comparators, strict=True):
                left = int(_ARITH_CMPS[type(op)](left, self._arith_node(right)))  # C-style: (a<b)<c
            return left
        raise ShellError("arithmetic syntax error")

    def _split(self, segs: list[_Seg]) -> list[Field]:
        """Field splitting: only unquoted expansion results split, at $IFS characters."""
        ifs = self.vars.get("IFS", " \t\n")
        fields: list[Field] = []
        cur: Field = []
        real = after_space = False
        for s in segs:
            if s.brk:
                fields.append(cur)
                cur, real = [], True
            elif s.quoted or not s.expanded:
                cur.append((s.text, not s.quoted))
                real = real or s.quoted or bool(s.text)
            else:
                for ch in s.text:
                    if ch not in ifs:
                        cur.append((ch, True))
                        real, after_space = True, False
                    elif ch in " \t\n":
                        if real:
                            fields.append(cur)
                            cur, real, after_space = [], False, True
                    elif not (after_space and not real):
                        fields.append(cur)
                        cur, real, after_space = [], False, False
                    else:
                        after_space = False
        if real:
            fields.append(cur)
        return fields

    def _glob(self, f: Field) -> list[str]:
        chars = [(c, active) for text, active in f for c in text]
        literal = "".join(c for c, _ in chars)
        if "f" in self.opts or not any(active and c in "*?[" for c, active in chars):
            return [literal]
        return self._glob_paths(chars) or [literal]

    def _glob_paths(self, chars: list[tuple[str, bool]]) -> list[str]:
        comps: list[list[tuple[str, bool]]] = [[]]
        for c, active in chars:
            if c == "/":
                comps.append([])
            else:
                comps[-1].append((c, active))
        results = ["/" if chars[0][0] == "/" else ""]
        for comp in filter(None, comps):
            name = "".join(c for c, _ in comp)
            if not any(active and c in "*?[" for c, active in comp):
                results = [_join(r, name) for r in results]
                continue
            pattern = "".join(c if active else _glob_escape(c) for c, active in comp)
            found = []
            for base in results:
                try:
                    entries = self.fs.listdir(self.abspath(base or "."))
                except OSError:
                    continue
                hidden_ok = name.startswith(".")
                found += [
                    _join(base, e) for e in entries if fnmatch.fnmatchcase(e, pattern) and (hidden_ok or e[0] != ".")
                ]
            results = found
        if chars[-1][0] == "/":
            results = [r + "/" for r in results if self.fs.is_dir(self.abspath(r))]
        return sorted(r for r in results if self.fs.lexists(self.abspath(r)))


# --- sh: builtins -----------------------------------------------------------------------
BuiltinFn = Callable[[Shell, list[str], IO], int]
_BUILTINS: dict[str, BuiltinFn] = {}


def _builtin(*names: str) -> Callable[[BuiltinFn], BuiltinFn]:
    def register(fn: BuiltinFn) -> BuiltinFn:
        for name in names:
            _BUILTINS[name] = fn
        return fn

    return register


@_builtin("cd")
def _cd(sh: Shell, args: list[str], io: IO) -> int:
    args = [a for a in args if a not in ("-L", "-P")]
    target = args[0] if args else sh.vars.get("HOME", "/")
    if target == "-":
        target = sh.vars.get("OLDPWD", sh.cwd)
        io.out.write(_b(target + "\n"))
    path = "/" + posixpath.normpath(sh.abspath(target)).lstrip("/")  # ash's cd is logical
    if not sh.fs.is_dir(path):
        reason = errno.ENOTDIR if sh.fs.exists(path) else errno.ENOENT
        sh.say(io, f"cd: can't cd to {target}: {os.strerror(reason)}")
        return 2
    sh.vars["OLDPWD"], sh.vars["PWD"], sh.cwd = sh.cwd, path, path
    return 0


@_builtin("exit")
def _exit(sh: Shell, args: list[str], io: IO) -> int:
    if args and not re.fullmatch(r"-?\d+", args[0]):
        raise ShellError(f"exit: Illegal number: {args[0]}")
    raise ShellExit(int(args[0]) & 0xFF if args else sh.status)


@_builtin("exec")
def _exec_builtin(sh: Shell, args: list[str], io: IO) -> int:
    raise ShellExit(sh.invoke(args, [], io) if args else 0)


def _set_option(sh: Shell, on: bool, name: str) -> None:
    if on:
        sh.opts.add(name)
    else:
        sh.opts.discard(name)


@_builtin("set")
def _set(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        io.out.write(_b("".join(f"{k}={_shquote(v)}\n" for k, v in sorted(sh.vars.items()))))
        return 0
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            sh.params = args[i + 1 :]
            return 0
        if arg in ("-o", "+o"):
            if i + 1 >= len(args):
                io.out.write(_b("".join(f"{n}\t{'on' if o in sh.opts else 'off'}\n" for n, o in _OPTION_NAMES.items())))
                return 0
            if args[i + 1] not in _OPTION_NAMES:
                raise ShellError(f"set: illegal option -o {args[i + 1]}")
            _set_option(sh, arg[0] == "-", _OPTION_NAMES[args[i + 1]])
            i += 2
            continue
        if len(arg) > 1 and arg[0] in "-+":
            for c in arg[1:]:
                if c not in "euxfvC":
                    raise ShellError(f"set: illegal option {arg[0]}{c}")
                _set_option(sh, arg[0] == "-", c)
            i += 1
            continue
        sh.params = args[i:]
        return 0
    return 0


@_builtin("export", "readonly")
def _export(sh: Shell, args: list[str], io: IO) -> int:
    names = [a for a in args if a != "-p"]
    if not names:
        io.out.write(_b("".join(f"export {k}={_shquote(sh.vars.get(k, ''))}\n" for k in sorted(sh.exported))))
        return 0
    for arg in names:
        name, eq, value = arg.partition("=")
        if not _NAME.fullmatch(name):
            raise ShellError(f"export: {name}: bad variable name")
        if eq:
            sh.vars[name] = value
        sh.exported.add(name)
    return 0


@_builtin("unset")
def _unset(sh: Shell, args: list[str], io: IO) -> int:
    for name in args:
        if name not in ("-v", "-f"):
            sh.vars.pop(name, None)
            sh.exported.discard(name)
    return 0


@_builtin("shift")
def _shift(sh: Shell, args: list[str], io: IO) -> int:
    n = int(args[0]) if args and args[0].isdigit() else 1
    if n > len(sh.params):
        return 1
    sh.params = sh.params[n:]
    return 0


def _loop_ctl(sh: Shell, kind: str, args: list[str]) -> int:
    if not sh.loops:
        return 0  # ash ignores a break outside any loop
    raise _LoopCtl(kind, int(args[0]) if args and args[0].isdigit() else 1)


@_builtin("break")
def _break(sh: Shell, args: list[str], io: IO) -> int:
    return _loop_ctl(sh, "break", args)


@_builtin("continue")
def _continue(sh: Shell, args: list[str], io: IO) -> int:
    return _loop_ctl(sh, "continue", args)


@_builtin("read")
def _read(sh: Shell, args: list[str], io: IO) -> int:
    opts, names = _getopt(args, "rp:t:n:s")
    names = names or ["REPLY"]
    line = io.stdin.readline()
    eof = not line.endswith(b"\n")
    text = _s(line[:-1] if not eof else line)
    while "r" not in opts and text.endswith("\\") and not eof:
        line = io.stdin.readline()
        eof = not line.endswith(b"\n")
        text = text[:-1] + _s(line[:-1] if not eof else line)
    if "r" not in opts:
        text = re.sub(r"\\(.)", r"\1", text)
    ifs = sh.vars.get("IFS", " \t\n")
    spaces = "".join(c for c in ifs if c in " \t\n")
    rest = text.strip(spaces)
    for i, name in enumerate(names):
        if i == len(names) - 1:
            sh.vars[name] = rest
            break
        j = next((k for k, c in enumerate(rest) if c in ifs), len(rest))
        sh.vars[name] = rest[:j]
        rest = rest[j:].lstrip(spaces)
        if rest[:1] and rest[0] in ifs:
            rest = rest[1:].lstrip(spaces)
    return int(eof)  # a last line without a newline is read, but read fails


@_builtin("eval")
def _eval(sh: Shell, args: list[str], io: IO) -> int:
    return sh.eval(" ".join(args), io)


@_builtin(".", "source")
def _source(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        raise ShellError(".: need a file name")
    try:
        src = _s(sh.fs.read_bytes(sh.abspath(args[0])))
    except OSError as e:
        raise ShellError(f".: can't open '{args[0]}': {_why(e)}") from None
    saved = sh.params
    if len(args) > 1:
        sh.params = args[1:]
    try:
        return sh.eval(src, io)
    finally:
        if len(args) > 1:
            sh.params = saved


@_builtin("trap")
def _trap(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        io.out.write(_b("".join(f"trap -- {_shquote(a)} {s}\n" for s, a in sh.traps.items())))
        return 0
    action, signals = ("-", args) if len(args) == 1 else (args[0], args[1:])
    for sig in signals:
        # Only EXIT can happen: no signal reaches a simulated exec.
        if sig in ("0", "EXIT"):
            if action == "-":
                sh.traps.pop("EXIT", None)
            else:
                sh.traps["EXIT"] = action
    return 0


@_builtin("command")
def _command(sh: Shell, args: list[str], io: IO) -> int:
    if args and args[0] in ("-v", "-V"):
        status = 0
        for name in args[1:]:
            if name in _BUILTINS:
                io.out.write(_b(name + "\n"))
            elif "/" not in name and name in APPLETS:
                io.out.write(_b(f"/bin/{name}\n"))
            elif "/" in name and sh.fs.is_file(sh.abspath(name)):
                io.out.write(_b(name + "\n"))
            else:
                status = 1
        return status
    args = args[1:] if args[:1] == ["-p"] else args
    return sh.invoke(args, [], io) if args else 0


@_builtin("wait", "umask", "local")
def _noop(sh: Shell, args: list[str], io: IO) -> int:
    return 0


@_applet("sh", "ash", usage="[-eux] [-c 'SCRIPT' [ARG0 [ARGS]] | FILE [ARGS] | -s [ARGS]]")
def _sh(ctx: Ctx, args: list[str]) -> int:
    opts: set[str] = set()
    command = from_stdin = False
    i = 0
    while i < len(args) and len(args[i]) > 1 and args[i][0] in "-+":
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if arg in ("-o", "+o") and i < len(args):
            if args[i] in _OPTION_NAMES:
                (opts.add if arg[0] == "-" else opts.discard)(_OPTION_NAMES[args[i]])
            i += 1
            continue
        for c in arg[1:]:
            if c == "c":
                command = True
            elif c == "s":
                from_stdin = True
            elif c in "euxfv":
                (opts.add if arg[0] == "-" else opts.discard)(c)
            elif c not in "il":
                raise UsageError(f"invalid option -- '{c}'")
    rest = args[i:]
    if command:
        if not rest:
            ctx.warn("-c requires an argument")
            return 2
        script, arg0, params = rest[0], (rest[1] if len(rest) > 1 else ctx.argv0), rest[2:]
    elif rest and not from_stdin:
        try:
            script = _s(ctx.read(rest[0]))
        except OSError as e:
            ctx.warn(f"can't open '{rest[0]}': {_why(e)}")
            return 2
        arg0, params = rest[0], rest[1:]
    else:
        script, arg0, params = _s(ctx.stdin.read()), ctx.argv0, rest
    shell = Shell(ctx, arg0, params)
    shell.opts |= opts
    return shell.run_script(script, IO(ctx.stdin, ctx.out, ctx.err))
