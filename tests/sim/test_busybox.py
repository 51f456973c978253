"""The exec command runner (simcluster.busybox): applets and sh acting on a container's files."""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from simcluster.busybox import Completed, run
from simcluster.fs import ContainerFS, Mount

NETD = "/host/etc/cni/net.d"  # writable hostPath mount
BIN = "/host/opt/cni/bin"  # read-only hostPath mount
FLANNEL = '{"name": "cbr0"}\n'


@dataclass
class Box:
    """A node directory, a container rootfs, and the container's view of both."""

    node: Path
    root: Path
    fs: ContainerFS

    def sh(self, script: str, *args: str, stdin: bytes = b"") -> Completed:
        return run(["sh", "-c", script, "sh", *args], self.fs, stdin=stdin)

    def __call__(self, *argv: str, stdin: bytes = b"") -> Completed:
        return run(list(argv), self.fs, stdin=stdin)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    node = tmp_path / "node"
    netd = node / "etc/cni/net.d"
    netd.mkdir(parents=True)
    (netd / "10-flannel.conflist").write_text(FLANNEL)
    # Absolute target: fine on the host, dangling in the pod (no /etc/cni in the container).
    os.symlink("/etc/cni/net.d/10-flannel.conflist", netd / "00-link.conf")
    (netd / ".hidden").write_text("h")
    bindir = node / "opt/cni/bin"
    (bindir / "sub").mkdir(parents=True)
    (bindir / "multus").write_bytes(b"\x7fELF-multus")
    (bindir / "sub/deep").write_text("deep\n")
    root = tmp_path / "root"
    for d in ("tmp", "etc", "host/etc/cni/net.d", "host/opt/cni/bin"):
        (root / d).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    fs = ContainerFS([Mount(NETD, netd), Mount(BIN, bindir, read_only=True)], rootfs=root)
    return Box(node, root, fs)


def ok(done: Completed) -> str:
    assert (done.exit_code, done.stderr) == (0, b""), done
    return done.stdout.decode()


def fails(done: Completed, code: int = 1) -> str:
    assert done.exit_code == code, done
    return done.stderr.decode()


# --- dispatch -------------------------------------------------------------------------------------------------


def test_unknown_command_is_127_with_the_shell_message(box: Box) -> None:
    assert fails(box("kubectl-nope", "x"), 127) == "sh: kubectl-nope: not found\n"


def test_an_applet_is_found_by_basename(box: Box) -> None:
    assert ok(box("/bin/cat", "/etc/passwd")).startswith("root:x:0:0")


def test_an_unexpected_error_becomes_exit_1_never_an_exception(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: str) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(box.fs, "read_bytes", boom)
    assert "RuntimeError: disk on fire" in fails(box("cat", "/etc/passwd"))


def test_usage_errors_print_the_busybox_banner(box: Box) -> None:
    err = fails(box("ls", "-Z"))
    assert err.startswith("ls: invalid option -- 'Z'\nBusyBox v1.36.1")
    assert "Usage: ls " in err


# --- reading --------------------------------------------------------------------------------------------------


def test_cat_files_and_stdin(box: Box) -> None:
    assert ok(box("cat", f"{NETD}/10-flannel.conflist", "-", stdin=b"more\n")) == FLANNEL + "more\n"


def test_cat_missing_file_names_it_and_keeps_going(box: Box) -> None:
    done = box("cat", "/x", "/etc/passwd")
    assert fails(done) == "cat: can't open '/x': No such file or directory\n"
    assert done.stdout.startswith(b"root:")


def test_a_host_absolute_symlink_dangles_in_the_container(box: Box) -> None:
    link = f"{NETD}/00-link.conf"
    assert fails(box("cat", link)) == f"cat: can't open '{link}': No such file or directory\n"
    assert ok(box("readlink", link)) == "/etc/cni/net.d/10-flannel.conflist\n"
    assert ok(box("sh", "-c", '[ -L "$1" ] && ! [ -e "$1" ] && echo dangling', "sh", link)) == "dangling\n"
    assert fails(box("ls", link)) == f"ls: {link}: No such file or directory\n"  # ls follows args unless -l


def test_paths_outside_every_mount_do_not_exist(box: Box) -> None:
    bare = ContainerFS([Mount(NETD, box.node / "etc/cni/net.d")])  # no rootfs at all
    assert run(["cat", "/etc/passwd"], bare).stderr == b"cat: can't open '/etc/passwd': No such file or directory\n"
    assert run(["ls", "/var"], bare).exit_code == 1
    assert run(["sh", "-c", "echo x > /tmp/f"], bare).stderr == b"sh: can't create /tmp/f: nonexistent directory\n"


def test_head_and_tail(box: Box) -> None:
    text = b"".join(b"%d\n" % i for i in range(1, 21))
    assert ok(box("head", "-n", "2", stdin=text)) == "1\n2\n"
    assert ok(box("head", "-3", stdin=text)) == "1\n2\n3\n"
    assert ok(box("head", "-c", "4", stdin=text)) == "1\n2\n"
    assert ok(box("tail", "-n", "2", stdin=text)) == "19\n20\n"
    assert ok(box("tail", "-n", "+19", stdin=text)) == "19\n20\n"
    assert ok(box("tail", "-c", "3", stdin=text)) == "20\n"
    assert ok(box("head", "-n", "1", "/etc/passwd", "/etc/passwd")) == (
        "==> /etc/passwd <==\nroot:x:0:0:root:/root:/bin/sh\n\n==> /etc/passwd <==\nroot:x:0:0:root:/root:/bin/sh\n"
    )
    assert fails(box("head", "/nope")) == "head: can't open '/nope': No such file or directory\n"


# --- ls and stat ----------------------------------------------------------------------------------------------


def test_ls_names(box: Box) -> None:
    assert ok(box("ls", NETD)) == "00-link.conf\n10-flannel.conflist\n"
    assert ok(box("ls", "-1A", NETD)) == ".hidden\n00-link.conf\n10-flannel.conflist\n"
    assert ok(box("ls", "-a", NETD)).startswith(".\n..\n.hidden\n")
    assert ok(box("ls", "/host")) == "etc\nopt\n"
    assert ok(box("ls", "-d", BIN)) == f"{BIN}\n"


def test_ls_several_paths_files_first_then_headed_dirs(box: Box) -> None:
    done = box("ls", f"{BIN}/sub", "/etc/passwd", "/missing")
    assert done.stdout == f"/etc/passwd\n\n{BIN}/sub:\ndeep\n".encode()
    assert fails(done) == "ls: /missing: No such file or directory\n"


def test_ls_long_format(box: Box) -> None:
    lines = ok(box("ls", "-l", NETD)).splitlines()
    assert re.fullmatch(r"total \d+", lines[0])
    assert re.fullmatch(
        r"lrwxrwxrwx +1 root +root +34 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) 00-link\.conf -> /etc/cni/net\.d/10-flannel\.conflist",
        lines[1],
    )
    assert re.fullmatch(r"-rw-r--r-- +1 root +root +17 .* 10-flannel\.conflist", lines[2])
    assert re.fullmatch(r"-rw-r--r-- +1 0 +0 +17 .* 10-flannel\.conflist", ok(box("ls", "-n", NETD)).splitlines()[2])


def test_stat_format_and_follow(box: Box) -> None:
    fmt = "%n|%s|%F|%a|%A|%h|%u|%g|%N"
    link = f"{NETD}/00-link.conf"
    assert ok(box("stat", "-c", fmt, link)) == (
        f"{link}|34|symbolic link|777|lrwxrwxrwx|1|0|0|'{link}' -> '/etc/cni/net.d/10-flannel.conflist'\n"
    )
    conf = f"{NETD}/10-flannel.conflist"
    assert (
        ok(box("stat", "-L", "-c", "%F %s %Y", conf))
        == f"regular file 17 {int(os.stat(box.node / 'etc/cni/net.d/10-flannel.conflist').st_mtime)}\n"
    )
    assert ok(box("stat", "-c", "%F", BIN)) == "directory\n"
    assert fails(box("stat", "-L", link)) == f"stat: can't stat '{link}': No such file or directory\n"


# --- test / [ -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        pytest.param(["-e", "/etc/passwd"], 0, id="exists"),
        pytest.param(["-f", BIN], 1, id="dir-is-not-file"),
        pytest.param(["-d", BIN], 0, id="dir"),
        pytest.param(["-s", "/etc/passwd"], 0, id="non-empty"),
        pytest.param(["-w", f"{BIN}/multus"], 1, id="read-only-mount-not-writable"),
        pytest.param(["-w", f"{NETD}/10-flannel.conflist"], 0, id="writable"),
        pytest.param(["-r", "/nope"], 1, id="missing-not-readable"),
        pytest.param(["!", "-e", "/nope"], 0, id="negation"),
        pytest.param(["-h", f"{NETD}/00-link.conf"], 0, id="symlink"),
        pytest.param(["a", "=", "a"], 0, id="equal"),
        pytest.param(["a", "!=", "a"], 1, id="not-equal"),
        pytest.param(["-z", ""], 0, id="empty"),
        pytest.param(["-n", ""], 1, id="non-empty-string"),
        pytest.param(["3", "-gt", "2", "-a", "x"], 0, id="and"),
        pytest.param(["1", "-gt", "2", "-o", ""], 1, id="or"),
        pytest.param([], 1, id="nothing-is-false"),
    ],
)
def test_test_expressions(box: Box, expr: list[str], code: int) -> None:
    assert box("test", *expr).exit_code == code
    assert box("[", *expr, "]").exit_code == code


def test_test_errors_exit_2(box: Box) -> None:
    assert fails(box("[", "-f", "/etc/passwd"), 2) == "[: missing ]\n"
    assert fails(box("test", "x", "-eq", "1"), 2) == "test: x: bad number\n"


# --- changing files -------------------------------------------------------------------------------------------


def test_mkdir(box: Box) -> None:
    ok(box("mkdir", "-p", f"{NETD}/a/b/c"))
    assert (box.node / "etc/cni/net.d/a/b/c").is_dir()
    ok(box("mkdir", "-p", BIN))  # existing, even read-only: fine
    assert fails(box("mkdir", f"{BIN}/x")) == f"mkdir: can't create directory '{BIN}/x': Read-only file system\n"
    assert (
        fails(box("mkdir", "-p", f"{BIN}/x/y")) == f"mkdir: can't create directory '{BIN}/x': Read-only file system\n"
    )
    assert fails(box("mkdir", NETD)) == f"mkdir: can't create directory '{NETD}': File exists\n"
    assert (
        fails(box("mkdir", "/tmp/no/such"))
        == "mkdir: can't create directory '/tmp/no/such': No such file or directory\n"
    )
    ok(box("mkdir", "-m", "700", "/tmp/private"))
    assert (box.root / "tmp/private").stat().st_mode & 0o777 == 0o700


def test_mv_within_a_mount_renames(box: Box) -> None:
    ok(box("mv", f"{NETD}/10-flannel.conflist", f"{NETD}/20-flannel.conflist"))
    assert sorted(p.name for p in (box.node / "etc/cni/net.d").iterdir()) == [
        ".hidden",
        "00-link.conf",
        "20-flannel.conflist",
    ]
    assert fails(box("mv", "/a", "/b")) == "mv: can't rename '/a': No such file or directory\n"
    assert fails(box("mv", f"{BIN}/multus", f"{BIN}/m")) == f"mv: can't rename '{BIN}/multus': Read-only file system\n"


def test_mv_across_mounts_copies_then_deletes(box: Box) -> None:
    ok(box("mv", f"{NETD}/10-flannel.conflist", "/tmp/"))
    assert (box.root / "tmp/10-flannel.conflist").read_text() == FLANNEL
    assert not (box.node / "etc/cni/net.d/10-flannel.conflist").exists()
    # EXDEV comes before EROFS: the copy is made, then the delete fails.
    assert fails(box("mv", f"{BIN}/multus", "/tmp/m")) == f"mv: can't remove '{BIN}/multus': Read-only file system\n"
    assert (box.root / "tmp/m").read_bytes() == b"\x7fELF-multus"
    assert (box.node / "opt/cni/bin/multus").exists()


def test_cp(box: Box) -> None:
    ok(box("cp", "/etc/passwd", NETD))
    assert (box.node / "etc/cni/net.d/passwd").read_text().startswith("root:")
    ok(box("cp", "-r", f"{BIN}/sub", "/tmp/sub"))
    assert (box.root / "tmp/sub/deep").read_text() == "deep\n"
    assert fails(box("cp", f"{BIN}/sub", "/tmp/x")) == f"cp: omitting directory '{BIN}/sub'\n"
    assert fails(box("cp", "/nope", "/tmp/x")) == "cp: can't stat '/nope': No such file or directory\n"
    assert (
        fails(box("cp", "/etc/passwd", f"{BIN}/passwd")) == f"cp: can't create '{BIN}/passwd': Read-only file system\n"
    )
    # -a keeps the symlink itself; plain cp follows it (and here it dangles).
    ok(box("cp", "-a", f"{NETD}/00-link.conf", "/tmp/link"))
    assert os.readlink(box.root / "tmp/link") == "/etc/cni/net.d/10-flannel.conflist"
    assert (
        fails(box("cp", f"{NETD}/00-link.conf", "/tmp/y"))
        == f"cp: can't stat '{NETD}/00-link.conf': No such file or directory\n"
    )


def test_rm(box: Box) -> None:
    assert fails(box("rm", "/nope")) == "rm: can't remove '/nope': No such file or directory\n"
    ok(box("rm", "-f", "/nope"))
    assert fails(box("rm", f"{BIN}/sub")) == f"rm: '{BIN}/sub' is a directory\n"
    assert fails(box("rm", "-rf", f"{BIN}/sub")) == (
        f"rm: can't remove '{BIN}/sub/deep': Read-only file system\nrm: can't remove '{BIN}/sub': Read-only file system\n"
    )
    ok(box("rm", f"{NETD}/00-link.conf"))  # removes the link, not its target
    ok(box("mkdir", "-p", "/tmp/d/e"))
    ok(box("rm", "-r", "/tmp/d"))
    assert not (box.root / "tmp/d").exists()


def test_ln(box: Box) -> None:
    ok(box("ln", "-s", "/etc/passwd", "/tmp/pw"))
    assert ok(box("cat", "/tmp/pw")).startswith("root:")
    assert fails(box("ln", "-s", "/x", "/tmp/pw")) == "ln: /tmp/pw: File exists\n"
    ok(box("ln", "-sf", "/x", "/tmp/pw"))
    assert os.readlink(box.root / "tmp/pw") == "/x"
    ok(box("ln", "-s", "/tmp", "/tmp/dirlink"))
    ok(box("ln", "-sfn", "/etc", "/tmp/dirlink"))  # -n: replace the link, do not go into /tmp
    assert os.readlink(box.root / "tmp/dirlink") == "/etc"
    assert fails(box("ln", "-s", "/x", f"{BIN}/l")) == f"ln: {BIN}/l: Read-only file system\n"


def test_readlink_f_and_realpath(box: Box) -> None:
    ok(box("ln", "-s", "../host/etc/cni/net.d", "/tmp/netd"))
    assert ok(box("readlink", "-f", "/tmp/netd/10-flannel.conflist")) == f"{NETD}/10-flannel.conflist\n"
    assert ok(box("realpath", "/tmp/netd/new.conf")) == f"{NETD}/new.conf\n"
    assert box("readlink", "-f", "/no/such/thing").exit_code == 1
    assert fails(box("realpath", "/no/such")) == "realpath: /no/such: No such file or directory\n"


def test_touch_and_chmod(box: Box) -> None:
    ok(box("touch", "/tmp/new"))
    assert (box.root / "tmp/new").read_bytes() == b""
    assert fails(box("touch", f"{BIN}/multus")) == f"touch: {BIN}/multus: Read-only file system\n"
    ok(box("chmod", "755", "/tmp/new"))
    assert (box.root / "tmp/new").stat().st_mode & 0o777 == 0o755
    ok(box("chmod", "go-rx", "/tmp/new"))
    assert (box.root / "tmp/new").stat().st_mode & 0o777 == 0o700
    assert fails(box("chmod", "644", "/tmp/none")) == "chmod: /tmp/none: No such file or directory\n"


def test_dd_writes_stdin_to_a_file_with_the_busybox_status_lines(box: Box) -> None:
    done = box("dd", f"of={NETD}/00-multus.conf", stdin=b"x" * 600)
    assert done.exit_code == 0
    assert done.stderr == b"1+1 records in\n1+1 records out\n600 bytes (600B) copied, 0.000000 seconds, 0B/s\n"
    assert (box.node / "etc/cni/net.d/00-multus.conf").read_bytes() == b"x" * 600
    done = box("dd", "if=/etc/passwd", "bs=4", "count=1", "status=noxfer")
    assert (done.stdout, done.stderr) == (b"root", b"1+0 records in\n1+0 records out\n")
    ok(box("dd", f"of={NETD}/00-multus.conf", "bs=1", "seek=2", "conv=notrunc,fsync", "status=none", stdin=b"YY"))
    assert (box.node / "etc/cni/net.d/00-multus.conf").read_bytes() == b"xxYY" + b"x" * 596
    assert (
        fails(box("dd", f"of={BIN}/multus", stdin=b"new")) == f"dd: can't open '{BIN}/multus': Read-only file system\n"
    )
    assert fails(box("dd", "if=/nope")) == "dd: can't open '/nope': No such file or directory\n"


def test_tee(box: Box) -> None:
    assert ok(box("tee", "/tmp/t", stdin=b"data\n")) == "data\n"
    ok(box("tee", "-a", "/tmp/t", stdin=b"more\n"))
    assert (box.root / "tmp/t").read_text() == "data\nmore\n"
    done = box("tee", f"{BIN}/t", stdin=b"x")
    assert (done.stdout, fails(done)) == (b"x", f"tee: {BIN}/t: Read-only file system\n")


def test_checksums(box: Box) -> None:
    assert (
        ok(box("sha256sum", "-", stdin=b"abc"))
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n"
    )
    assert ok(box("md5sum", stdin=b"abc")) == "900150983cd24fb0d6963f7d28e17f72  -\n"
    assert fails(box("sha256sum", "/x")) == "sha256sum: can't open '/x': No such file or directory\n"


# --- find, tar ------------------------------------------------------------------------------------------------


def test_find(box: Box) -> None:
    assert ok(box("find", "/host", "-maxdepth", "2")) == "/host\n/host/etc\n/host/etc/cni\n/host/opt\n/host/opt/cni\n"
    assert ok(box("find", BIN, "-mindepth", "1", "-type", "f")) == f"{BIN}/multus\n{BIN}/sub/deep\n"
    assert ok(box("find", NETD, "-name", "*.conf*", "-type", "l")) == f"{NETD}/00-link.conf\n"
    assert ok(box("find", BIN, "-maxdepth", "1", "!", "-type", "d", "-print0")) == f"{BIN}/multus\0"
    assert fails(box("find", "/nope")) == "find: /nope: No such file or directory\n"
    assert fails(box("find", "/", "-bogus")) == "find: unrecognized: -bogus\n"


def test_tar_writes_a_ustar_archive_of_the_mounted_files(box: Box) -> None:
    done = box("tar", "-c", "-f", "-", "-C", "/host/etc/cni", "net.d", "missing")
    assert fails(done) == "tar: missing: No such file or directory\n"
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tf:
        assert tf.getnames() == ["net.d", "net.d/.hidden", "net.d/00-link.conf", "net.d/10-flannel.conflist"]
        link = tf.getmember("net.d/00-link.conf")
        assert (link.issym(), link.linkname) == (True, "/etc/cni/net.d/10-flannel.conflist")
        member = tf.extractfile("net.d/10-flannel.conflist")
        assert member is not None and member.read() == FLANNEL.encode()
        assert tf.getmember("net.d").isdir()


def test_tar_strips_leading_slash_and_needs_files(box: Box) -> None:
    done = box("tar", "cf", "-", "/etc/passwd")
    assert done.stderr == b"tar: removing leading '/' from member names\n"
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tf:
        assert tf.getnames() == ["etc/passwd"]
    assert fails(box("tar", "-cf", "-")) == "tar: empty archive\n"


# --- small applets --------------------------------------------------------------------------------------------


def test_echo_printf_and_friends(box: Box) -> None:
    assert ok(box("echo", "-n", "a", "b")) == "a b"
    assert ok(box("echo", "-e", "a\\tb")) == "a\tb\n"
    assert ok(box("printf", "%s=%d\\n", "a", "1", "b", "2")) == "a=1\nb=2\n"
    assert ok(box("printf", "%5s|%-3d|%x|%%\\n", "ab", "7", "255")) == "   ab|7  |ff|%\n"
    assert ok(box("basename", "/a/b/c.conf", ".conf")) == "c\n"
    assert ok(box("dirname", "/a/b/c.conf")) == "/a/b\n"
    assert (box("true").exit_code, box("false").exit_code, box("sleep", "5").exit_code, box("sync").exit_code) == (
        0,
        1,
        0,
        0,
    )
    assert ok(box("id")) == "uid=0(root) gid=0(root) groups=0(root)\n"
    assert ok(box("uname", "-r")) == "5.15.0-simcluster\n"
    assert ok(box("uname", "-a")).startswith("Linux ")
    assert ok(run(["env"], box.fs, env={"A": "1", "B": "2"})) == "A=1\nB=2\n"
    assert ok(run(["env", "B=3", "sh", "-c", "echo $A$B"], box.fs, env={"A": "1"})) == "13\n"


def test_wc_and_grep(box: Box) -> None:
    assert ok(box("wc", "-l", stdin=b"a\nb\n")) == "2\n"
    assert ok(box("wc", "-c", "/etc/passwd")) == "65 /etc/passwd\n"
    assert ok(box("wc", stdin=b"one two\n")) == "        1         2         8\n"
    text = b"alpha\nbeta\nGamma\n"
    assert ok(box("grep", "a$", stdin=text)) == "alpha\nbeta\nGamma\n"
    assert ok(box("grep", "-v", "-e", "alpha", "-e", "beta", stdin=text)) == "Gamma\n"
    assert ok(box("grep", "-iF", "gAm", stdin=text)) == "Gamma\n"
    assert ok(box("grep", "-c", "^[ab]", stdin=text)) == "2\n"
    assert box("grep", "-q", "delta", stdin=text).exit_code == 1
    assert fails(box("grep", "x", "/nope"), 2) == "grep: /nope: No such file or directory\n"


def test_base64_round_trip(box: Box) -> None:
    assert ok(box("base64", stdin=b"hello")) == "aGVsbG8=\n"
    assert ok(box("base64", "-d", stdin=b"aGVs\nbG8=\n")) == "hello"
    assert fails(box("base64", "-d", stdin=b"!!!")) == "base64: invalid input\n"


# --- sh -------------------------------------------------------------------------------------------------------


def test_sh_writes_stdin_to_a_path_given_as_an_argument(box: Box) -> None:
    target = f"{NETD}/00-multus.conf"
    ok(box.sh('cat > "$1"', target, stdin=b'{"type": "multus"}\n'))
    assert (box.node / "etc/cni/net.d/00-multus.conf").read_bytes() == b'{"type": "multus"}\n'


def test_sh_atomic_write_through_a_temp_file_and_mv(box: Box) -> None:
    target = f"{NETD}/00-multus.conf"
    ok(box.sh('cat > "$1.tmp" && mv "$1.tmp" "$1"', target, stdin=b"v2\n"))
    assert sorted(p.name for p in (box.node / "etc/cni/net.d").iterdir()) == [
        ".hidden",
        "00-link.conf",
        "00-multus.conf",
        "10-flannel.conflist",
    ]
    assert (box.node / "etc/cni/net.d/00-multus.conf").read_text() == "v2\n"


def test_a_path_pasted_into_the_script_splits_where_an_argument_does_not(box: Box) -> None:
    target = f"{NETD}/my file.conf"
    done = box.sh(f"cat > {target}", stdin=b"x")  # the bad way: two words
    assert fails(done) == "cat: can't open 'file.conf': No such file or directory\n"
    assert (box.node / "etc/cni/net.d/my").read_bytes() == b""
    ok(box.sh('cat > "$1"', target, stdin=b"x"))  # the good way
    assert (box.node / "etc/cni/net.d/my file.conf").read_bytes() == b"x"


def test_sh_redirection_onto_a_read_only_mount(box: Box) -> None:
    done = box.sh(f'echo x > {BIN}/f; echo "rc=$?"')
    assert (done.stdout, done.stderr) == (b"rc=2\n", f"sh: can't create {BIN}/f: Read-only file system\n".encode())


def test_sh_pipes_and_lists(box: Box) -> None:
    assert ok(box.sh("cat /etc/passwd | grep nobody | wc -l")) == "1\n"
    assert ok(box.sh("false && echo no || echo yes; true || echo never; echo $?")) == "yes\n0\n"
    assert ok(box.sh("! false && echo negated")) == "negated\n"
    assert box.sh("true | false").exit_code == 1


def test_sh_exit_codes_and_set_e(box: Box) -> None:
    assert box.sh("exit 3").exit_code == 3
    assert box.sh("false").exit_code == 1
    done = box.sh("set -e; false && true; echo survived; cat /nope; echo never")
    assert (done.exit_code, done.stdout) == (1, b"survived\n")
    assert box.sh("sh -c 'exit 7'; echo $?").stdout == b"7\n"


def test_sh_quoting_parameters_and_expansions(box: Box) -> None:
    assert ok(box.sh('printf "[%s]" "$@"; echo " $#"', "a b", "", "c")) == "[a b][][c] 3\n"
    assert ok(box.sh('printf "[%s]" $@; echo', "a b", "", "c")) == "[a][b][c]\n"
    assert ok(box.sh("echo \"$0\" '$1' \\$1 ${1}x", "one")) == "sh $1 $1 onex\n"
    script = "v=/a/b/c.conf; echo ${v##*/} ${v%.*} ${unset:-def} ${#v} $((2 * (3 + 4)))"
    assert ok(box.sh(script)) == "c.conf /a/b/c def 11 14\n"
    assert ok(box.sh('x=$(cat /etc/passwd | head -n 1); echo "${x%%:*}"')) == "root\n"
    assert ok(box.sh("echo /host/*")) == "/host/etc /host/opt\n"
    assert ok(box.sh("echo /host/*.nomatch")) == "/host/*.nomatch\n"


def test_sh_redirections(box: Box) -> None:
    assert ok(box.sh("{ echo out; echo err >&2; } > /tmp/both 2>&1; cat /tmp/both")) == "out\nerr\n"
    ok(box.sh("echo a > /tmp/f; echo b >> /tmp/f"))
    assert (box.root / "tmp/f").read_text() == "a\nb\n"
    assert ok(box.sh("cat < /tmp/f; ls /nope 2>/dev/null; echo y >/dev/null; cat /dev/null")) == "a\nb\n"
    assert ok(box.sh("cat <<EOF\nhome=$HOME\nEOF", stdin=b"")) == "home=/root\n"
    assert fails(box.sh("cat < /nope"), 2) == "sh: can't open /nope: no such file\n"


def test_sh_if_for_while(box: Box) -> None:
    script = 'for f in /etc/passwd /nope; do if [ -f "$f" ]; then echo "$f yes"; else echo "$f no"; fi; done'
    assert ok(box.sh(script)) == "/etc/passwd yes\n/nope no\n"
    assert ok(box.sh("i=0; while [ $i -lt 3 ]; do i=$((i + 1)); done; echo $i")) == "3\n"
    assert ok(box.sh('while read a; do echo "<$a>"; done', stdin=b"x\ny\n")) == "<x>\n<y>\n"
    err = fails(box.sh("while true; do sleep 1; done"), 2)
    assert "time does not pass" in err


def test_sh_syntax_errors_exit_2_after_what_ran(box: Box) -> None:
    done = box.sh("echo before\nfi")
    assert (done.exit_code, done.stdout, done.stderr) == (2, b"before\n", b'sh: syntax error: unexpected "fi"\n')
    assert fails(box.sh("if true; then echo"), 2) == 'sh: syntax error: unexpected end of file (expecting "fi")\n'


def test_sh_script_from_stdin_and_from_a_file(box: Box) -> None:
    assert ok(box("sh", stdin=b"echo from stdin\n")) == "from stdin\n"
    (box.root / "tmp/s.sh").write_text('#!/bin/sh\necho "script $1"\n')
    assert ok(box("sh", "/tmp/s.sh", "arg")) == "script arg\n"
    assert ok(box("/tmp/s.sh", "direct")) == "script direct\n"
    assert fails(box(f"{BIN}/multus"), 126).endswith("binaries are not simulated\n")


def test_sh_cd_and_relative_paths(box: Box) -> None:
    assert ok(box.sh(f"cd {NETD} && cat 10-flannel.conflist && pwd")) == FLANNEL + f"{NETD}\n"
    assert fails(box.sh("cd /nope"), 2) == "sh: cd: can't cd to /nope: No such file or directory\n"


def test_sh_assignments_before_a_builtin_are_temporary(box: Box) -> None:
    assert ok(box.sh('IFS=: read a b rest < /etc/passwd; echo "$a|$b|${IFS:-unset}"')) == "root|x|unset\n"
    assert ok(box.sh("X=1 env | grep ^X=; echo ${X:-gone}")) == "X=1\ngone\n"
