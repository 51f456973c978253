"""Models of the real Multus containers: `install_multus`, the thin `/thin_entrypoint` and the thick
`multus-daemon`, as simulated programs (see `simcluster.process`).

Each model follows the Go source of Multus 4.x step by step: the same flags and defaults, the same
checks in the same order, the same messages (verbatim: users search for them) and exit codes, and
the same files written. Everything a model decides comes from its arguments, its environment and
what the container sees through `ctx.fs`; paths are container paths, so a host path given where a
pod path belongs fails exactly as it does on a real node.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from simcluster.fs import ContainerFS
from simcluster.process import Clock, ContainerContext, Process, Program, Ready, Step, Wait

BIN_DIR = "/usr/src/multus-cni/bin"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DAEMON_CONFIG = "/etc/cni/net.d/multus.d/daemon-config.json"
MULTUS_CONF = "00-multus.conf"
# os.CreateTemp appends a random number to its pattern; any fixed one stands for it.
TEMP_SUFFIX = "1804289383"
MASTER_WAIT = 120.0  # findMasterPlugin(dir, 120): one try a second
READINESS_WAIT = 45.0  # GetReadinessIndicatorFile: PollImmediate(1 s, 45 s)

T = TypeVar("T")
Steps = Generator[Step, bool, T]  # a piece of a program: it may wait, and returns a value


# --- Go-shaped errors and values ----------------------------------------------------------------
class GoError(Exception):
    """An error as the Go program prints it with %v; `errno` when a syscall caused it."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.errno = code


def errno_text(err: OSError) -> str:
    """Go spells syscall errors like strerror, but lower case: "no such file or directory"."""
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


def go_quote(text: str) -> str:
    """%q of a string."""
    return json.dumps(text, ensure_ascii=False)


def go_bool(value: bool) -> str:
    return "true" if value else "false"


def go_join(*parts: str) -> str:
    """filepath.Join: skips empty elements, then cleans."""
    kept = [p for p in parts if p]
    return posixpath.normpath("/".join(kept)) if kept else ""


def _go_numbers(value: Any) -> Any:
    """encoding/json decodes every number as float64 and prints it back shortest-first."""
    if isinstance(value, dict):
        return {k: _go_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return int(float(value))
    return value


def go_json(value: Any) -> str:
    """json.Marshal of decoded JSON (maps sort their keys; <, > and & are escaped for HTML)."""
    text = json.dumps(_go_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escaped)
    return text.replace("\u2029", "\\u2029")


def _go_char(char: str) -> str:
    return "'\\''" if char == "'" else f"'{char}'"


def _open_container(doc: str, pos: int) -> str:
    """The innermost `{` or `[` open at `pos` (strings skipped), to name what the parser expected."""
    stack: list[str] = []
    in_string = escaped = False
    for char in doc[:pos]:
        if in_string:
            in_string = not (char == '"' and not escaped)
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def go_json_error(err: json.JSONDecodeError) -> str:
    """The text encoding/json gives for the syntax error Python found (best effort, same spot)."""
    doc, pos = err.doc, err.pos
    if pos >= len(doc.rstrip()) or err.msg.startswith("Unterminated"):
        return "unexpected end of JSON input"
    char = _go_char(doc[pos])
    if err.msg.startswith("Invalid control character"):
        return f"invalid character {char} in string literal"
    if err.msg.startswith("Expecting property name") or "trailing comma before end of object" in err.msg:
        return f"invalid character {char} looking for beginning of object key string"
    if err.msg.startswith("Expecting ':'"):
        return f"invalid character {char} after object key"
    if err.msg.startswith("Expecting ','"):
        where = "object key:value pair" if _open_container(doc, pos) == "{" else "array element"
        return f"invalid character {char} after {where}"
    if err.msg.startswith("Extra data"):
        return f"invalid character {char} after top-level value"
    return f"invalid character {char} looking for beginning of value"


def _go_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def parse_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as err:
        raise GoError(go_json_error(err)) from None


def _semver(text: str) -> tuple[int, int, int] | None:
    """blang/semver.Make: exactly MAJOR.MINOR.PATCH, optional pre-release/build."""
    m = re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?", text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


# --- the Go os package, over a container's files ------------------------------------------------
@dataclass
class GoFS:
    """`os` calls on a container's files, failing with Go's error text (`stat <path>: <errno>`).
    Relative paths are taken from the working directory, as the kernel does."""

    fs: ContainerFS
    cwd: str = "/"

    def _call(self, op: str, path: str, fn: Callable[[str], T]) -> T:
        try:
            if not path:
                raise OSError(errno.ENOENT, "")
            return fn(posixpath.join(self.cwd, path))
        except OSError as err:
            raise GoError(f"{op} {path}: {errno_text(err)}", err.errno or 0) from None

    def stat(self, path: str) -> os.stat_result:
        return self._call("stat", path, self.fs.stat)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except GoError:
            return False
        return True

    def is_dir_entry(self, path: str) -> bool:
        """DirEntry.IsDir: lstat, so a symlink to a directory is not one."""
        try:
            return stat.S_ISDIR(self._call("lstat", path, self.fs.lstat).st_mode)
        except GoError:
            return False

    def read_file(self, path: str) -> bytes:
        if self.exists(path) and self.fs.is_dir(posixpath.join(self.cwd, path)):
            raise GoError(f"read {path}: is a directory", errno.EISDIR)
        return self._call("open", path, self.fs.read_bytes)

    def read_dir(self, path: str) -> list[str]:
        """os.ReadDir: the open fails on a missing path; reading a file fails in readdirent."""
        if self.exists(path) and not self.fs.is_dir(posixpath.join(self.cwd, path)):
            raise GoError(f"readdirent {path}: not a directory", errno.ENOTDIR)
        return self._call("open", path, self.fs.listdir)

    def write_file(self, path: str, data: bytes, mode: int = 0o644, *, append: bool = False) -> None:
        self._call("open", path, lambda p: self.fs.write_bytes(p, data, mode=mode, append=append))

    def mkdir_all(self, path: str, mode: int = 0o755) -> None:
        target = posixpath.join(self.cwd, path)
        if self.fs.is_dir(target):
            return
        if self.fs.lexists(target):
            raise GoError(f"mkdir {path}: not a directory", errno.ENOTDIR)
        try:
            self.fs.mkdir(target, parents=True, exist_ok=True, mode=mode)
        except OSError as err:
            raise GoError(f"mkdir {err.filename or path}: {errno_text(err)}", err.errno or 0) from None

    def remove(self, path: str) -> None:
        self._call("remove", path, self.fs.remove)

    def remove_all(self, path: str) -> None:
        """os.RemoveAll: nothing to do for a missing path; children first, then the path itself
        (a mount point's contents go, the mount point stays busy)."""
        target = posixpath.join(self.cwd, path)
        if not self.fs.lexists(target):
            return
        if self.fs.is_dir(target) and not self.fs.is_symlink(target):
            for name in self.fs.listdir(target):
                self.remove_all(posixpath.join(path, name))
            self._call("unlinkat", path, self.fs.rmdir)
        else:
            self._call("unlinkat", path, self.fs.remove)

    def rename(self, src: str, dst: str) -> None:
        try:
            self.fs.rename(posixpath.join(self.cwd, src), posixpath.join(self.cwd, dst))
        except OSError as err:
            raise GoError(f"rename {src} {dst}: {errno_text(err)}", err.errno or 0) from None

    def chmod(self, path: str, mode: int) -> None:
        self._call("chmod", path, lambda p: self.fs.chmod(p, mode))


def copy_file_atomic(gofs: GoFS, src: str, dest_dir: str, temp_name: str, dest_name: str) -> None:
    """cmdutils.CopyFileAtomic: copy into a temp file next to the target, then rename over it."""
    temp_path = go_join(dest_dir, temp_name)
    if gofs.exists(temp_path):
        try:
            gofs.remove(temp_path)
        except GoError as err:
            raise GoError(f"cannot remove old temp file {go_quote(temp_path)}: {err}") from None
    created = f"{dest_dir.rstrip('/')}/{temp_name}{TEMP_SUFFIX}"
    try:
        gofs.write_file(created, b"", 0o600)
    except GoError as err:
        raise GoError(f"cannot create temp file {go_quote(temp_name)} in {go_quote(dest_dir)}: {err}") from None
    try:
        data = gofs.read_file(src)
    except GoError as err:
        raise GoError(f"cannot open file {go_quote(src)}: {err}") from None
    gofs.write_file(created, data, 0o600)
    gofs.chmod(created, stat.S_IMODE(gofs.stat(src).st_mode))
    dest = go_join(dest_dir, dest_name)
    try:
        gofs.rename(created, dest)
    except GoError as err:
        raise GoError(f"cannot replace {go_quote(dest)} with temp file {go_quote(temp_path)}: {err}") from None


# --- command lines: spf13/pflag and the standard flag package -----------------------------------
@dataclass(frozen=True)
class Flag:
    name: str
    default: str | bool
    short: str = ""


class FlagError(Exception):
    """A command line the flag package rejects (the program prints it, then its usage, and exits 2)."""


class HelpRequested(Exception):
    """-h / -help with the standard flag package (usage, exit 0)."""


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _parse_bool(value: str, shown: str) -> bool:
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise FlagError(
        f'invalid argument "{value}" for "{shown}" flag: strconv.ParseBool: parsing "{value}": invalid syntax'
    )


def parse_pflags(args: Sequence[str], flags: Iterable[Flag], *, lenient: bool = False) -> dict[str, str | bool]:
    """spf13/pflag: `--name=value`, `--name value`, `-x value`, `-xvalue`; flags may follow
    positional arguments; `--` ends them. `lenient` ignores unknown flags (shell entrypoints)."""
    by_name = {f.name: f for f in flags}
    by_short = {f.short: f for f in by_name.values() if f.short}
    values: dict[str, str | bool] = {f.name: f.default for f in by_name.values()}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            spec = by_name.get(name)
            shown = f"--{name}"
            if spec is None:
                if lenient:
                    continue
                raise FlagError(f"unknown flag: --{name}")
        else:
            letters = arg[1:]
            spec = by_short.get(letters[0])
            if spec is None:
                raise FlagError(f"unknown shorthand flag: '{letters[0]}' in -{letters}")
            shown = f"-{spec.short}, --{spec.name}"
            rest = letters[1:]
            eq = "=" if rest else ""
            value = rest[1:] if rest.startswith("=") else rest
        if isinstance(spec.default, bool):
            values[spec.name] = _parse_bool(value, shown) if eq else True
        elif eq:
            values[spec.name] = value
        elif i < len(args):
            values[spec.name] = args[i]
            i += 1
        else:
            raise FlagError(f"flag needs an argument: {shown.split(', ')[-1]}")
    return values


def parse_goflags(args: Sequence[str], flags: Iterable[Flag]) -> dict[str, str | bool]:
    """The standard flag package: `-name`, `--name`, `=value` or the next argument; parsing stops
    at the first non-flag argument."""
    by_name = {f.name: f for f in flags}
    values: dict[str, str | bool] = {f.name: f.default for f in by_name.values()}
    i = 0
    while i < len(args):
        arg = args[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            break
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body[0] in "-=":
            raise FlagError(f"bad flag syntax: {arg}")
        i += 1
        name, eq, value = body.partition("=")
        spec = by_name.get(name)
        if spec is None:
            if name in ("h", "help"):
                raise HelpRequested
            raise FlagError(f"flag provided but not defined: -{name}")
        if isinstance(spec.default, bool):
            values[name] = _parse_bool(value, f"-{name}") if eq else True
        elif eq:
            values[name] = value
        elif i < len(args):
            values[name] = args[i]
            i += 1
        else:
            raise FlagError(f"flag needs an argument: -{name}")
    return values


def _usage_exit(ctx: ContainerContext, err: FlagError, prog: str) -> int:
    ctx.log(str(err))
    ctx.log(f"Usage of {prog}:")
    return 2


# --- install_multus: the init container that drops the CNI binary onto the node -----------------
INSTALL_FLAGS = (Flag("type", "", "t"), Flag("dest-dir", "/host/opt/cni/bin", "d"), Flag("help", False, "h"))


def install_multus(args: Sequence[str], prog: str = "/install_multus") -> Program:
    """`install_multus --type thin|thick [-d DIR]`: copies `multus` (thin) or `multus-shim` (thick),
    then `passthru`, into DIR. Exit 0, or 1 with the reason on stderr."""

    def run(ctx: ContainerContext) -> Process:
        yield from ()
        try:
            opts = parse_pflags(args, INSTALL_FLAGS)
        except FlagError as err:
            return _usage_exit(ctx, err, prog)
        if opts["help"]:
            return 1
        name = {"thick": "multus-shim", "thin": "multus"}.get(str(opts["type"]))
        if name is None:
            ctx.log("--type is missing or --type has invalid value")
            return 1
        gofs, dest = GoFS(ctx.fs), str(opts["dest-dir"])
        try:
            copy_file_atomic(gofs, f"{BIN_DIR}/{name}", dest, f"{name}.temp", name)
        except GoError as err:
            ctx.log(f"failed to copy file {name}: {err}")
            return 1
        ctx.log(f"multus {name} copy succeeded!")
        try:
            copy_file_atomic(gofs, f"{BIN_DIR}/passthru", dest, "passthru.temp", "passthru")
        except GoError as err:
            ctx.log(f"failed to copy file {name}: {err}")  # sic: the real one names the multus binary here
            return 1
        ctx.log(f"passthru cni {BIN_DIR}/passthru copy succeeded!")
        return 0

    return run


# --- the thin entrypoint -----------------------------------------------------------------------
THIN_FLAGS = (
    Flag("cni-bin-dir", "/host/opt/cni/bin"),
    Flag("cni-conf-dir", "/host/etc/cni/net.d"),
    Flag("cni-version", ""),
    Flag("multus-conf-file", "auto"),
    Flag("multus-bin-file", f"{BIN_DIR}/multus"),
    Flag("multus-cni-conf-dir", "/host/etc/cni/multus/net.d"),
    Flag("skip-multus-binary-copy", False),
    Flag("multus-kubeconfig-file-host", "/etc/cni/net.d/multus.d/multus.kubeconfig"),
    Flag("multus-master-cni-file-name", ""),
    Flag("namespace-isolation", False),
    Flag("global-namespaces", ""),
    Flag("multus-autoconfig-dir", "/host/etc/cni/net.d"),
    Flag("multus-log-to-stderr", True),
    Flag("multus-log-level", ""),
    Flag("multus-log-file", ""),
    Flag("override-network-name", False),
    Flag("cleanup-config-on-exit", False),
    Flag("rename-conf-file", False),
    Flag("readiness-indicator-file", ""),
    Flag("additional-bin-dir", ""),
    Flag("skip-tls-verify", False),
    Flag("force-cni-version", False),
    Flag("skip-config-watch", False),
    Flag("help", False, "h"),
)

KUBECONFIG_TEMPLATE = """# Kubeconfig file for Multus CNI plugin.
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: {server}
    {tls}
users:
- name: multus
  user:
    token: "{token}"
contexts:
- name: multus-context
  context:
    cluster: local
    user: multus
current-context: multus-context
"""

CONFLIST_TEMPLATE = """{{
    "cniVersion": "{version}",
    "name": "{name}",
    "plugins": [ {{
        "type": "multus",{options}
        "kubeconfig": "{kubeconfig}",
        "delegates": [
            {master}
        ]
    }}]
}}
"""

CONF_TEMPLATE = """{{
        "cniVersion": "{version}",
        "name": "{name}",
        "type": "multus",{options}
        "kubeconfig": "{kubeconfig}",
        "delegates": [
                {master}
        ]
}}
"""


@dataclass
class ThinOptions:
    cni_bin_dir: str
    cni_conf_dir: str
    cni_version: str
    multus_conf_file: str
    multus_bin_file: str
    multus_cni_conf_dir: str
    skip_multus_binary_copy: bool
    multus_kubeconfig_file_host: str
    multus_master_cni_file_name: str
    namespace_isolation: bool
    global_namespaces: str
    multus_autoconfig_dir: str
    multus_log_to_stderr: bool
    multus_log_level: str
    multus_log_file: str
    override_network_name: bool
    cleanup_config_on_exit: bool
    rename_conf_file: bool
    readiness_indicator_file: str
    additional_bin_dir: str
    skip_tls_verify: bool
    force_cni_version: bool
    skip_config_watch: bool
    help: bool

    @classmethod
    def parse(cls, args: Sequence[str], *, lenient: bool = False) -> ThinOptions:
        values: dict[str, Any] = dict(parse_pflags(args, THIN_FLAGS, lenient=lenient))
        return cls(**{name.replace("-", "_"): value for name, value in values.items()})


def thin_entrypoint(args: Sequence[str], prog: str = "/thin_entrypoint", *, legacy: bool = False) -> Program:
    """`/thin_entrypoint`: checks its dirs, copies `multus` to the bin dir, writes the kubeconfig
    and `00-multus.conf(list)` from the first primary config, then stays up. Every failure prints
    its reason and exits 0 (so the pod restarts as `Completed`).

    `legacy` stands for the v3 `/entrypoint.sh` (best effort: same flags and messages, but it
    takes `--cni-version` as given, default 0.3.1, and always writes `00-multus.conf`)."""

    def run(ctx: ContainerContext) -> Process:
        try:
            opts = ThinOptions.parse(args, lenient=legacy)
        except FlagError as err:
            yield from ()
            return _usage_exit(ctx, err, prog)
        if legacy and not opts.cni_version:
            opts.cni_version = "0.3.1"
        return (yield from _Thin(ctx, opts, legacy).main())

    return run


@dataclass
class _Thin:
    ctx: ContainerContext
    opts: ThinOptions
    legacy: bool
    gofs: GoFS = field(init=False)

    def __post_init__(self) -> None:
        self.gofs = GoFS(self.ctx.fs, self.ctx.container.get("workingDir") or "/")

    def main(self) -> Process:
        o, log = self.opts, self.ctx.log
        yield from ()
        if o.help:
            return 1
        problem = self.verify()
        if problem:
            log(problem)
            return 0
        if not o.skip_multus_binary_copy:
            try:
                copy_file_atomic(self.gofs, o.multus_bin_file, o.cni_bin_dir, "_multus", "multus")
            except GoError as err:
                log(f"failed at multus copy: {err}")
                return 0
        hashes: tuple[bytes, bytes] | None = None
        master, master_hash = "", b""
        auto = o.multus_conf_file == "auto"
        try:
            hashes = self.create_kubeconfig(None)
        except GoError as err:
            log(f"failed to create multus kubeconfig: {err}")
            return 0
        if auto:
            log("kubeconfig file is created.")
            try:
                master, master_hash = self.create_multus_config(None)
            except GoError as err:
                log(f"failed to create multus config: {err}")
                return 0
            log("multus config file is created.")
        else:
            name = posixpath.basename(o.multus_conf_file)
            try:
                copy_file_atomic(self.gofs, o.multus_conf_file, o.cni_conf_dir, f"{name}.temp", name)
            except GoError as err:
                log(f"failed at copy multus conf file: {err}")
                return 0
            log(f"multus config file {o.multus_conf_file} is copied.")
        if o.cleanup_config_on_exit:
            self.ctx.on_stop.append(self.cleanup)  # `defer cleanupMultusConf`, run on SIGTERM
        yield Ready()
        if o.cleanup_config_on_exit and auto and not o.skip_config_watch:
            return (yield from self.watch(hashes, master, master_hash))
        yield Wait(None)
        return 0

    def verify(self) -> str:
        o = self.opts
        checks = [
            ("cni-conf-dir", o.cni_conf_dir),
            ("cni-bin-dir", o.cni_bin_dir),
            ("multus-bin-file", o.multus_bin_file),
        ]
        if o.multus_conf_file != "auto":
            checks.append(("multus-conf-file", o.multus_conf_file))
        for flag, path in checks:
            try:
                self.gofs.stat(path)
            except GoError as err:
                return f"{flag} is not found: {err}"
        return ""

    def watch(self, hashes: tuple[bytes, bytes] | None, master: str, master_hash: bytes) -> Process:
        """The loop run with --cleanup-config-on-exit: once a second, refresh the kubeconfig when the
        service account changes and the config when the primary changes."""
        log = self.ctx.log
        log("Entering watch loop...")
        present = True
        while True:
            yield Wait(1.0)
            try:
                hashes = self.create_kubeconfig(hashes)
            except GoError as err:
                log(f"failed to update multus kubeconfig: {err}")
                self.cleanup()
                return 0
            if not self.gofs.exists(master):
                if present:
                    log(f"Master plugin @ {go_quote(master)} has been deleted. waiting for its restoration...")
                present = False
                continue
            if not present:
                log(f"Master plugin @ {go_quote(master)} was restored. Regenerating given configuration.")
                present = True
            try:
                master, master_hash = self.create_multus_config(master_hash)
            except GoError as err:
                log(f"failed to create multus config: {err}")
                self.cleanup()
                return 0

    def cleanup(self) -> None:
        for name in (MULTUS_CONF, f"{MULTUS_CONF}list"):
            with contextlib.suppress(GoError):
                self.gofs.remove(f"{self.opts.cni_conf_dir}/{name}")

    def _file_and_hash(self, path: str) -> tuple[bytes, bytes]:
        try:
            self.gofs.stat(path)
        except GoError as err:
            raise GoError(f"file {path} not found: {err}") from None
        try:
            data = self.gofs.read_file(path)
        except GoError as err:
            raise GoError(f"cannot read {path} file: {err}") from None
        return data, hashlib.sha256(data).digest()

    def create_kubeconfig(self, prev: tuple[bytes, bytes] | None) -> tuple[bytes, bytes]:
        o, env = self.opts, self.ctx.env
        ca, ca_hash = self._file_and_hash(f"{SA_DIR}/ca.crt")
        token, token_hash = self._file_and_hash(f"{SA_DIR}/token")
        ca_same = prev is not None and prev[0] == ca_hash
        token_same = prev is not None and prev[1] == token_hash
        if prev is not None and token_same and (ca_same or o.skip_tls_verify):
            return prev
        if prev is not None:
            self.ctx.log(
                f"CA ({go_bool(not ca_same)}) or SA token ({go_bool(not token_same)}) changed - recreating kubeconfig"
            )
        try:
            self.gofs.mkdir_all(f"{o.cni_conf_dir}/multus.d")
        except GoError as err:
            raise GoError(f"cannot create multus.d directory: {err}") from None
        try:
            self.gofs.mkdir_all(o.multus_cni_conf_dir)
        except GoError as err:
            raise GoError(f"cannot create multus-cni-conf-dir({o.multus_cni_conf_dir}) directory: {err}") from None
        protocol = env.get("KUBERNETES_SERVICE_PROTOCOL") or "https"
        server = f"{protocol}://[{env.get('KUBERNETES_SERVICE_HOST', '')}]:{env.get('KUBERNETES_SERVICE_PORT', '')}"
        tls = (
            "insecure-skip-tls-verify: true"
            if o.skip_tls_verify
            else f"certificate-authority-data: {base64.b64encode(ca).decode()}"
        )
        text = KUBECONFIG_TEMPLATE.format(server=server, tls=tls, token=token.decode(errors="replace"))
        temp = f"{o.cni_conf_dir}/multus.d/multus.kubeconfig.new"
        final = f"{o.cni_conf_dir}/multus.d/multus.kubeconfig"
        try:
            self.gofs.write_file(temp, text.encode(), 0o600)
        except GoError as err:
            raise GoError(f"cannot create kubeconfig temp file: {err}") from None
        try:
            self.gofs.rename(temp, final)
        except GoError as err:
            raise GoError(f"cannot replace {go_quote(final)} with temp file {go_quote(temp)}: {err}") from None
        self.ctx.log(f"kubeconfig is created in {final}")
        return ca_hash, token_hash

    def master_path(self) -> str:
        """libcni.ConfFiles(dir, .conf/.conflist): sorted, directories skipped, a missing dir is
        no file at all; the first whose name does not start with 00-multus.conf. No waiting."""
        o = self.opts
        if o.multus_master_cni_file_name:
            return go_join(o.multus_autoconfig_dir, o.multus_master_cni_file_name)
        try:
            names = self.gofs.read_dir(o.multus_autoconfig_dir)
        except GoError as err:
            if err.errno != errno.ENOENT:
                raise GoError(f"cannot find master CNI config in {go_quote(o.multus_autoconfig_dir)}: {err}") from None
            names = []
        for name in names:
            path = go_join(o.multus_autoconfig_dir, name)
            if posixpath.splitext(name)[1] not in (".conf", ".conflist") or self.gofs.is_dir_entry(path):
                continue
            if not name.startswith("00-multus.conf"):
                return path
        raise GoError(f"cannot find valid master CNI config in {go_quote(o.multus_autoconfig_dir)}")

    def create_multus_config(self, prev_hash: bytes | None) -> tuple[str, bytes]:
        o, log = self.opts, self.ctx.log
        master_path = self.master_path()
        data, digest = self._file_and_hash(master_path)
        if prev_hash is not None and prev_hash == digest:
            return master_path, digest
        if prev_hash is not None:
            log("master config changed - recreating multus config")
        try:
            master = parse_json(data)
        except GoError as err:
            raise GoError(f"cannot read master CNI config json: {err}") from None
        if not isinstance(master, dict):
            msg = f"json: cannot unmarshal {_go_kind(master)} into Go value of type map[string]interface {{}}"
            raise GoError(f"cannot read master CNI config json: {msg}")
        version = self._cni_version(master, master_path)
        name = "multus-cni-network"
        if o.override_network_name:
            if "name" not in master:
                raise GoError(f"cannot get name in master CNI config file {go_quote(master_path)}: <nil>")
            name = str(master["name"])
            log(f"master plugin name is overrided to {go_quote(name)}")
        options = self._conf_options(master)
        temp = f"{o.cni_conf_dir}/{MULTUS_CONF}.new"
        try:
            self.gofs.write_file(temp, b"", 0o600)
        except GoError as err:
            raise GoError(f"cannot create multus cni temp file: {err}") from None
        as_list = not self.legacy and (_semver(version) or (0, 0, 0)) >= (1, 0, 0)
        path = f"{o.cni_conf_dir}/{MULTUS_CONF}list" if as_list else f"{o.cni_conf_dir}/{MULTUS_CONF}"
        template = CONFLIST_TEMPLATE if as_list else CONF_TEMPLATE
        text = template.format(
            version=version,
            name=name,
            options=options,
            kubeconfig=o.multus_kubeconfig_file_host,
            master=go_json(master),
        )
        self.gofs.write_file(temp, text.encode(), 0o600)
        try:
            self.gofs.rename(temp, path)
        except GoError as err:
            raise GoError(f"cannot replace {go_quote(path)} with temp file {go_quote(temp)}: {err}") from None
        if o.rename_conf_file:
            renamed = f"{master_path}.old"
            try:
                self.gofs.rename(master_path, renamed)
            except GoError:
                raise GoError(f"cannot move original master file to {go_quote(renamed)}") from None
            log(f"Original master file moved to {go_quote(renamed)}")
        return master_path, digest

    def _cni_version(self, master: dict[str, Any], master_path: str) -> str:
        """The master's cniVersion must match --cni-version (when given), which then follows it."""
        o = self.opts
        if "cniVersion" not in master:
            raise GoError(f"cannot get cniVersion in master CNI config file {go_quote(master_path)}: <nil>")
        if o.force_cni_version:
            master["cniVersion"] = o.cni_version
            self.ctx.log(f"force CNI version to {go_quote(o.cni_version)}")
        elif not self.legacy:
            theirs = str(master["cniVersion"])
            if o.cni_version and theirs != o.cni_version:
                raise GoError(
                    f"Multus cni version is {go_quote(o.cni_version)} while master plugin cni version is {go_quote(theirs)}"
                )
            o.cni_version = theirs
        return o.cni_version

    def _conf_options(self, master: dict[str, Any]) -> str:
        """The optional lines between `"type": "multus",` and `"kubeconfig"`, in template order."""
        o = self.opts
        caps: dict[str, Any] = {}
        if "plugins" in master:
            for plugin in master.get("plugins") or []:
                if isinstance(plugin, dict) and isinstance(plugin.get("capabilities"), dict):
                    caps.update(plugin["capabilities"])
            self.ctx.log("master capabilities is get from conflist")
        else:
            if isinstance(master.get("capabilities"), dict):
                caps.update(master["capabilities"])
            self.ctx.log("master capabilities is get from conffile")
        level = o.multus_log_level.lower()
        if level not in ("", "debug", "error", "panic", "verbose"):
            raise GoError(
                f"Log levels should be one of: debug/verbose/error/panic, did not understand: {go_quote(o.multus_log_level)}"
            )
        pad = "\n        "
        lines = [
            f'"capabilities": {go_json(caps)},' if caps else "",
            '"namespaceIsolation": true,' if o.namespace_isolation else "",
            f'"globalNamespaces": {go_quote(o.global_namespaces)},' if o.global_namespaces else "",
            '"logToStderr": false,' if not o.multus_log_to_stderr else "",
            f'"logLevel": {go_quote(level)},' if level else "",
            f'"logFile": {go_quote(o.multus_log_file)},' if o.multus_log_file else "",
            f'"binDir": {go_quote(o.additional_bin_dir)},' if o.additional_bin_dir else "",
            f'"cniConf": {go_quote(o.multus_cni_conf_dir)},' if o.multus_cni_conf_dir else "",
            f'"readinessindicatorfile": {go_quote(o.readiness_indicator_file)},' if o.readiness_indicator_file else "",
        ]
        return "".join(pad + line for line in lines if line)


# --- the thick daemon --------------------------------------------------------------------------
LEVELS = {"panic": 0, "error": 1, "verbose": 2, "debug": 3}


@dataclass
class DaemonLog:
    """pkg/logging: `<RFC 3339> [<level>] <message>` on stderr (when logToStderr) and in logFile;
    before the daemon config is read: stderr on, level panic."""

    ctx: ContainerContext
    gofs: GoFS
    level: int = 0
    stderr: bool = True
    file: str = ""

    def configure(self, conf: dict[str, Any]) -> None:
        """LoadDaemonNetConf: logToStderr, logFile, logLevel (an unknown level is reported and ignored)."""
        self.stderr = bool(conf.get("logToStderr"))
        self.file = str(conf.get("logFile") or "")
        wanted = str(conf.get("logLevel") or "")
        if wanted:
            if wanted.lower() in LEVELS:
                self.level = LEVELS[wanted.lower()]
            else:
                self.ctx.log(f"multus logging: cannot set logging level to {wanted}")

    def _print(self, level: str, message: str) -> str:
        if LEVELS[level] <= self.level:
            line = f"{Clock.stamp(self.ctx.at)} [{level}] {message}"
            if self.stderr:
                self.ctx.log(line)
            if self.file:
                try:
                    self.gofs.mkdir_all(posixpath.dirname(self.file) or "/")
                    self.gofs.write_file(self.file, (line + "\n").encode(), 0o600, append=True)
                except GoError:
                    pass  # lumberjack's write error is dropped by fmt.Fprintf
        return message

    def debug(self, message: str) -> None:
        self._print("debug", message)

    def verbose(self, message: str) -> None:
        self._print("verbose", message)

    def error(self, message: str) -> str:
        """logging.Errorf: prints, and returns the message as the error."""
        return self._print("error", message)

    def panic(self, message: str) -> None:
        for line in (
            message,
            "========= Stack trace output ========",
            "Multus Panic",
            "========= Stack trace output end ========",
        ):
            self._print("panic", line)


# Go struct fields the daemon decodes its config into: (json name, Go type). Order = marshal order.
CONTROLLER_FIELDS = (
    ("chrootDir", "string"),
    ("logFile", "string"),
    ("logLevel", "string"),
    ("logToStderr", "bool"),
    ("perNodeCertificate", "object"),
    ("metricsPort", "int"),
    ("socketDir", "string"),
)
MULTUS_CONF_FIELDS = (
    ("binDir", "string"),
    ("capabilities", "map[string]bool"),
    ("cniVersion", "string"),
    ("logFile", "string"),
    ("logLevel", "string"),
    ("logToStderr", "bool"),
    ("logOptions", "object"),
    ("name", "string"),
    ("clusterNetwork", "string"),
    ("namespaceIsolation", "bool"),
    ("globalNamespaces", "string"),
    ("readinessindicatorfile", "string"),
    ("type", "string"),
    ("cniDir", "string"),
    ("cniConfigDir", "string"),
    ("daemonSocketDir", "string"),
    ("multusConfigFile", "string"),
    ("multusMasterCNI", "string"),
    ("multusAutoconfigDir", "string"),
    ("forceCNIVersion", "bool"),
    ("overrideNetworkName", "bool"),
)
# Generate() blanks these before marshalling: they configure the daemon, not the shim.
DAEMON_ONLY = {
    "cniConfigDir",
    "multusConfigFile",
    "multusAutoconfigDir",
    "multusMasterCNI",
    "forceCNIVersion",
    "readinessindicatorfile",
}
LOG_OPTION_KEYS = ("maxAge", "maxSize", "maxBackups", "compress")


def _type_ok(value: Any, gotype: str) -> bool:
    if gotype == "string":
        return isinstance(value, str)
    if gotype == "bool":
        return isinstance(value, bool)
    if gotype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if gotype == "map[string]bool":
        return isinstance(value, dict) and all(isinstance(v, bool) or v is None for v in value.values())
    return isinstance(value, dict)


def go_unmarshal(raw: Any, fields: Sequence[tuple[str, str]], struct: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """json.Unmarshal into a struct: keys match field names exactly or case-insensitively, the
    last match wins, null leaves a field alone, unknown keys are ignored, a wrong type fails."""
    if not isinstance(raw, dict):
        raise GoError(f"json: cannot unmarshal {_go_kind(raw)} into Go value of type server.{struct}")
    result = dict(defaults)
    failure = ""
    for key, value in raw.items():
        match = next((f for f in fields if f[0] == key), None) or next(
            (f for f in fields if f[0].lower() == key.lower()), None
        )
        if match is None or value is None:
            continue
        name, gotype = match
        if not _type_ok(value, gotype):
            failure = (
                failure
                or f"json: cannot unmarshal {_go_kind(value)} into Go struct field {struct}.{name} of type {gotype}"
            )
            continue
        if gotype == "map[string]bool":
            value = {**result.get(name, {}), **{k: bool(v) for k, v in value.items()}}
        result[name] = value
    if failure:
        raise GoError(failure)
    return result


def thick_daemon(args: Sequence[str], prog: str = f"{BIN_DIR}/multus-daemon") -> Program:
    """`multus-daemon [-config FILE]`: reads its daemon config, waits for the readiness file
    (45 s) and a primary CNI config (120 s), opens its socket, writes `<cniConfigDir>/00-multus.conf`
    and serves until stopped. Exit 1 (config, readiness), 2 (no primary config), 3 (listener, write)."""

    def run(ctx: ContainerContext) -> Process:
        return (yield from _Thick(ctx, prog).main(args))

    return run


@dataclass
class _Thick:
    ctx: ContainerContext
    prog: str
    gofs: GoFS = field(init=False)
    log: DaemonLog = field(init=False)
    conf: dict[str, Any] = field(default_factory=dict)  # MultusConf
    primary: str = ""  # the primary config's path, as clusterNetwork names it
    conf_path: str = ""  # <cniConfigDir>/00-multus.conf
    stopped: bool = False

    def __post_init__(self) -> None:
        self.gofs = GoFS(self.ctx.fs, self.ctx.container.get("workingDir") or "/")
        self.log = DaemonLog(self.ctx, self.gofs)

    def main(self, args: Sequence[str]) -> Process:
        yield from ()
        try:
            flags = parse_goflags(args, (Flag("version", False), Flag("config", DAEMON_CONFIG)))
        except HelpRequested:
            self.ctx.log(f"Usage of {self.prog}:")
            return 0
        except FlagError as err:
            return _usage_exit(self.ctx, err, self.prog)
        if flags["version"]:
            self.ctx.log("multus-daemon: version:(simulated), commit:unknown, date:unknown")
            return 4
        config_path = str(flags["config"])
        try:
            server = self.load_server_config(config_path)
        except GoError as err:
            self.log.panic(f"startMultusDaemon failed to load the CNI server configuration: {err}")
            return 1
        try:
            self.conf = self.parse_multus_config(config_path)
        except GoError as err:
            self.log.panic(f"startMultusDaemon failed to load the multus configuration: {err}")
            return 1
        self.log.verbose("multus-daemon started")
        readiness = self.conf["readinessindicatorfile"]
        if readiness:
            self.log.verbose("Readiness Indicator file check")
            ready = yield Wait(READINESS_WAIT, until=lambda: self.gofs.exists(posixpath.normpath(readiness)))
            if not ready:
                self.log.error(
                    f"have you checked that your default network is ready? still waiting for readinessindicatorfile @ {readiness}. pollimmediate error: timed out waiting for the condition"
                )
                return 1
            self.log.verbose("Readiness Indicator file check done!")
        auto = self.conf["multusConfigFile"] == "auto"
        if auto:
            if not self.conf["cniVersion"]:
                self.log.error(
                    "the CNI version is a mandatory parameter when the '-multus-config-file=auto' option is used"
                )
            try:
                yield from self.new_manager()
            except GoError as err:
                self.log.error(f"failed to create the configuration manager for the primary CNI plugin: {err}")
                return 2
        else:
            self.copy_user_config()
        try:
            self.start_server(server)
        except GoError as err:
            self.log.panic(f"failed start the multus thick-plugin listener: {err}")
            return 3
        self.log.verbose("API readiness check")
        self.log.verbose("API readiness check done!")
        if not auto:
            # Nothing for main to wait on, so it returns at once (multus-cni#1366): Completed, restarted.
            self.log.verbose("multus daemon is exited")
            return 0
        try:
            self.start_manager()
        except GoError as err:
            self.log.error(f"failed to start config manager: {err}")
            return 3
        self.ctx.on_stop.append(self.stop)
        yield Ready()
        return (yield from self.monitor())

    # config ------------------------------------------------------------------------------------
    def load_server_config(self, path: str) -> dict[str, Any]:
        """cniServerConfig + LoadDaemonNetConf (read through filepath.Abs); sets up logging."""
        data = self.gofs.read_file(posixpath.normpath(posixpath.join(self.gofs.cwd, path)))
        try:
            conf = go_unmarshal(
                parse_json(data), CONTROLLER_FIELDS, "ControllerNetConf", {"socketDir": "/run/multus/", "chrootDir": ""}
            )
        except GoError as err:
            raise GoError(f"failed to unmarshall the daemon configuration: {err}") from None
        self.log.configure(conf)
        return conf

    def parse_multus_config(self, path: str) -> dict[str, Any]:
        """config.ParseMultusConfig: the same file as the shim's MultusConf, name forced."""
        defaults: dict[str, Any] = {name: "" for name, gotype in MULTUS_CONF_FIELDS if gotype == "string"}
        defaults.update({name: False for name, gotype in MULTUS_CONF_FIELDS if gotype == "bool"})
        defaults.update(multusConfigFile="auto", type="multus-shim", capabilities={}, cniConfigDir="/etc/cni/net.d")
        try:
            data = self.gofs.read_file(path)
        except GoError as err:
            raise GoError(f"ParseMultusConfig failed to read the config file's contents: {err}") from None
        try:
            conf = go_unmarshal(parse_json(data), MULTUS_CONF_FIELDS, "MultusConf", defaults)
        except GoError as err:
            raise GoError(f"failed to unmarshall the daemon configuration: {err}") from None
        conf["name"] = "multus-cni-network"
        return conf

    # the primary CNI config ------------------------------------------------------------------
    def _masters(self, directory: str) -> list[str]:
        try:
            names = self.gofs.read_dir(directory)
        except GoError as err:
            raise GoError(f"error when listing the CNI plugin configurations: {err}", err.errno) from None
        found = [
            n for n in names if not n.startswith("00-multus") and posixpath.splitext(n)[1] in (".conf", ".conflist")
        ]
        return sorted(found)

    def find_master(self, directory: str) -> Steps[str]:
        """findMasterPlugin(dir, 120): a listing error ends it at once; an empty dir is read again
        every second for 120 s, so a primary config written meanwhile is picked up."""
        found = self._masters(directory)
        if not found:

            def appeared() -> bool:
                try:
                    return bool(self._masters(directory))
                except GoError:
                    return True

            if not (yield Wait(MASTER_WAIT, until=appeared)):
                raise GoError(f"could not find a plugin configuration in {directory}")
            found = self._masters(directory)
        return found[0]

    def new_manager(self) -> Steps[None]:
        """config.NewManager: find (or take) the primary config, watch its dir, load it as the delegate."""
        conf = self.conf
        autodir = conf["multusAutoconfigDir"]
        name = conf["multusMasterCNI"]
        if not name:
            try:
                name = yield from self.find_master(autodir)
            except GoError as err:
                wrapped = f"failed to find the cluster master CNI plugin: {err}"
                self.log.error(f"failed to find the primary CNI plugin: {wrapped}")
                raise GoError(wrapped) from None
        if conf["forceCNIVersion"]:
            self._force_cni_version(go_join(autodir, name))
        self._check_watch(autodir, "cni config")
        readiness_dir = posixpath.dirname(conf["readinessindicatorfile"]) if conf["readinessindicatorfile"] else ""
        if readiness_dir and readiness_dir != autodir:
            self._check_watch(readiness_dir, "readinessIndicator")
        if name == f"{autodir}/{MULTUS_CONF}":
            raise GoError(self.log.error(f"cannot specify {autodir}/{MULTUS_CONF} to prevent recursive config load"))
        self.conf_path = go_join(conf["cniConfigDir"], MULTUS_CONF)
        self.primary = go_join(autodir, name)
        try:
            delegate = self.load_primary()
        except GoError as err:
            raise GoError(
                f"failed to load the primary CNI configuration as a multus delegate with error '{err}'"
            ) from None
        if conf["overrideNetworkName"]:
            self._override_name(delegate)

    def _check_watch(self, directory: str, what: str) -> None:
        """fsnotify's watcher.Add fails on a path that does not exist."""
        if not self.gofs.exists(directory):
            raise GoError(f"failed to add watch on {go_quote(directory)} for {what}: no such file or directory")

    def _force_cni_version(self, path: str) -> None:
        try:
            data = self.gofs.read_file(path)
        except GoError as err:
            raise GoError(f"failed to read cni config {path}: {err}") from None
        try:
            primary = parse_json(data)
        except GoError as err:
            raise GoError(f"failed to unmarshall cni config {path}: {err}") from None
        primary["cniVersion"] = self.conf["cniVersion"]
        try:
            self.gofs.write_file(path, go_json(primary).encode(), 0o644)
        except GoError as err:
            raise GoError(f"couldn't update cluster network config: {err}") from None

    def _override_name(self, delegate: Any) -> None:
        name = delegate.get("name") if isinstance(delegate, dict) else None
        if name is None:
            raise GoError(
                self.log.error("could not override the network name: failed to access delegate CNI plugin name")
            )
        if not name:
            raise GoError(
                self.log.error(
                    f"could not override the network name: the primary CNI Configuration does not feature the network name: {delegate}"
                )
            )
        self.conf["name"] = str(name)

    def load_primary(self) -> Any:
        """loadPrimaryCNIConfigFromFile: read and decode it, check versions, take its capabilities."""
        try:
            data = self.gofs.read_file(self.primary)
        except GoError as err:
            inner = f"failed to read the cluster primary CNI config {self.primary}: {err}"
            raise GoError(
                self.log.error(f"failed to access the primary CNI configuration from {self.primary}: {inner}")
            ) from None
        try:
            delegate = parse_json(data)
        except GoError as err:
            inner = f"failed to unmarshall primary CNI config: {err}"
            raise GoError(
                self.log.error(f"failed to access the primary CNI configuration from {self.primary}: {inner}")
            ) from None
        self._check_versions(delegate)
        if not isinstance(delegate, dict):
            raise GoError("couldn't get cni config from delegate")
        self.conf["clusterNetwork"] = self.primary
        self.conf["capabilities"] = {**self.conf["capabilities"], **_enabled_capabilities(delegate)}
        return delegate

    def _check_versions(self, delegate: Any) -> None:
        """CheckVersionCompatibility: from 0.4.0 (CHECK) on, the delegate must be >= 0.4.0 too."""
        ours = _semver(self.conf["cniVersion"])
        if ours is None:
            raise GoError("couldn't get top level cni version")
        if ours < (0, 4, 0):
            return
        theirs = delegate.get("cniVersion") if isinstance(delegate, dict) else None
        if not isinstance(theirs, str):
            raise GoError("couldn't get cni version of delegate")
        parsed = _semver(theirs)
        if parsed is None:
            raise GoError(f"Invalid character(s) found in version {go_quote(theirs)}")
        if parsed < (0, 4, 0):
            raise GoError(f"delegate cni version is {theirs} while top level cni version is {self.conf['cniVersion']}")

    def generate(self) -> str:
        """MultusConf.Generate: the struct marshalled in field order, empty optional fields left out."""
        out: dict[str, Any] = {}
        always = {"cniVersion", "name", "type"}
        for name, gotype in MULTUS_CONF_FIELDS:
            value = "" if name in DAEMON_ONLY and gotype == "string" else self.conf.get(name)
            if name in DAEMON_ONLY and gotype == "bool":
                value = False
            if name == "logOptions" and isinstance(value, dict):
                value = {k: value[k] for k in LOG_OPTION_KEYS if value.get(k) is not None}
            if name in always or value:
                out[name] = dict(sorted(value.items())) if isinstance(value, dict) and name == "capabilities" else value
        return json.dumps(_go_numbers(out), separators=(",", ":"), ensure_ascii=False)

    def copy_user_config(self) -> None:
        """multusConfigFile names a file: copy it into cniConfigDir (a failure is only logged)."""
        src, cni_dir = self.conf["multusConfigFile"], self.conf["cniConfigDir"]
        try:
            try:
                data = self.gofs.read_file(src)
            except GoError as err:
                raise GoError(f"failed to open (READ only) file {src}: {err}") from None
            dest = f"{cni_dir}/{posixpath.basename(src)}"
            try:
                self.gofs.write_file(dest, data, 0o666)
            except GoError as err:
                raise GoError(f"creating copying file {dest}: {err}") from None
        except GoError as err:
            self.log.error(f"failed to copy the user provided configuration {src}: {err}")

    # the server --------------------------------------------------------------------------------
    def start_server(self, server: dict[str, Any]) -> None:
        """startMultusDaemon: a fresh socket dir (RemoveAll + MkdirAll 0700), an in-cluster client,
        the chroot executor, the pod informer, then the socket itself."""
        socket_dir = server["socketDir"]
        try:
            self.gofs.remove_all(socket_dir)
        except GoError as err:
            raise GoError(
                f"failed to prepare the cni-socket for communicating with the shim: failed to remove old pod info socket directory {socket_dir}: {err}"
            ) from None
        try:
            self.gofs.mkdir_all(socket_dir, 0o700)
        except GoError as err:
            raise GoError(
                f"failed to prepare the cni-socket for communicating with the shim: failed to create pod info socket directory {socket_dir}: {err}"
            ) from None
        client_error = self._in_cluster_error()
        if client_error:
            raise GoError(f"failed to create the server: error getting k8s client: {client_error}")
        if server["chrootDir"]:
            self.log.verbose(f"server configured with chroot: {server['chrootDir']}")
        node = self.ctx.env.get("MULTUS_NODE_NAME", "")
        if node:
            self.log.verbose(f"Filtering pod watch for node {go_quote(node)}")
        socket = go_join(socket_dir, "multus.sock")
        try:
            self.gofs.write_file(socket, b"", 0o600)  # an empty file stands for the unix socket
        except GoError as err:
            message = self.log.error(
                f"failed to listen on pod info socket: listen unix {socket}: bind: {str(err).split(': ')[-1]}"
            )
            raise GoError(f"failed to start the CNI server using socket {socket}. Reason: {message}") from None

    def _in_cluster_error(self) -> str:
        """rest.InClusterConfig: the service env and the token file must be there."""
        if not self.ctx.env.get("KUBERNETES_SERVICE_HOST") or not self.ctx.env.get("KUBERNETES_SERVICE_PORT"):
            return "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
        try:
            self.gofs.read_file(f"{SA_DIR}/token")
        except GoError as err:
            return str(err)
        return ""

    def start_manager(self) -> None:
        """Manager.Start: generate, log and persist 00-multus.conf (0600)."""
        generated = self.generate()
        self.log.verbose(f"Generated MultusCNI config: {generated}")
        self.persist(generated)

    def persist(self, generated: str) -> None:
        verb = "Overwriting" if self.gofs.exists(self.conf_path) else "Writing"
        self.log.debug(f"{verb} Multus CNI configuration @ {self.conf_path}")
        try:
            self.gofs.write_file(self.conf_path, generated.encode(), 0o600)
        except GoError as err:
            raise GoError(self.log.error(f"failed to persist the multus configuration: {err}")) from None

    def monitor(self) -> Process:
        """The config watcher: a written primary config regenerates 00-multus.conf; a removed
        readiness file removes it and ends the daemon (exit 2)."""
        self.log.verbose(f"started to watch file {self.primary}")
        readiness = self.conf["readinessindicatorfile"]
        seen = self._primary_bytes()

        def event() -> bool:
            if self.stopped:
                return False
            if readiness and not self.gofs.exists(readiness):
                return True
            current = self._primary_bytes()
            return current is not None and current != seen

        while True:
            yield Wait(None, until=event)
            if readiness and not self.gofs.exists(readiness):
                self.log.verbose("readiness indicator file is gone. restart multus-daemon")
                self._remove_conf()
                return 2
            seen = self._primary_bytes()
            self.regenerate()

    def _primary_bytes(self) -> bytes | None:
        try:
            return self.gofs.read_file(self.primary)
        except GoError:
            return None

    def regenerate(self) -> None:
        try:
            self.load_primary()
            updated = self.generate()
        except GoError:
            self.log.error(f"failed to read the primary CNI plugin config from {self.primary}")
            updated = ""
        self.log.debug(f"Re-generated MultusCNI config: {updated}")
        with contextlib.suppress(GoError):  # persist has logged it
            self.persist(updated)
        try:
            self.load_primary()
        except GoError as err:
            self.log.error(f"failed to reload the updated config: {err}")

    def _remove_conf(self) -> None:
        with contextlib.suppress(GoError):
            self.gofs.remove(self.conf_path)

    def stop(self) -> None:
        """SIGTERM: the watcher stops and deletes the 00-multus.conf it wrote."""
        if self.stopped:
            return
        self.stopped = True
        self.log.verbose("caught terminated, stopping...")
        if self.conf_path and self.primary:
            self.log.verbose("Stopped monitoring, closing channel ...")
            self.log.verbose("ConfigWatcher done")
            self.log.verbose(f"Delete old config @ {self.conf_path}")
            self._remove_conf()
        self.log.verbose("multus daemon is exited")


def _enabled_capabilities(delegate: dict[str, Any]) -> dict[str, bool]:
    """setCapabilities: every capability set true in the plugins of a list, or in a single config."""
    plugins = delegate.get("plugins")
    sources = plugins if isinstance(plugins, list) and plugins else [delegate]
    enabled: dict[str, bool] = {}
    for plugin in sources:
        caps = plugin.get("capabilities") if isinstance(plugin, dict) else None
        if isinstance(caps, dict):
            enabled.update({name: True for name, on in caps.items() if on is True})
    return enabled
