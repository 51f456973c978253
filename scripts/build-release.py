#!/usr/bin/env python3
"""Build the krew archive and fill in the manifests.

    python scripts/build-release.py                 # dist/kubectl-multus-v<version>.tar.gz, dist/plugin.yaml, ./plugin.yaml
    python scripts/build-release.py --manifests     # only bring krew-manifest.yaml and plugin.yaml up to date

The archive is one .tar.gz for linux and darwin on amd64 and arm64: a `kubectl-multus` launcher
(`#!/usr/bin/env python3`), `pkg/` with the tool and the pure-Python dependencies pinned in
scripts/vendor.txt, bytecode precompiled for every Python 3.10+ interpreter given (by default
python3.10 to python3.13, all required), the `kubectl_complete-multus` completion shim and LICENSE.
No symlinks, fixed timestamps and owners: the same inputs give the same sha256.

The project's home URL is `[project.urls] Homepage` in pyproject.toml; it is written into
krew-manifest.yaml (the krew-release-bot template) and from there into plugin.yaml.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the test extra brings tomli
    try:
        import tomli as tomllib
    except ImportError:
        raise SystemExit(
            "scripts/build-release.py reads pyproject.toml: run it with Python 3.11+, or pip install tomli"
        ) from None

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
PYTHONS = ("python3.10", "python3.11", "python3.12", "python3.13")  # what the launcher supports
EXECUTABLES = ("kubectl-multus", "kubectl_complete-multus")
# Dropped from pkg/: the asyncio client nothing imports, tests, scripts pip writes, native code
# (a .so would tie the archive to one OS, CPU and Python; PyYAML and charset-normalizer fall back).
PRUNE_DIRS = ("bin", "kubernetes/aio", "websocket/tests")
PRUNE_SUFFIXES = (".so", ".pyd", ".dylib", ".pyc")
# plugin.yaml's sha256 before any build: that of an empty file (all digits would read as a YAML number)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, as wheels use
# Every module of the tool, imported by each interpreter with site-packages off: proves the
# archive carries everything it needs.
SMOKE = """
import importlib, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import kubectl_multus
for m in pkgutil.walk_packages(kubectl_multus.__path__, "kubectl_multus."):
    importlib.import_module(m.name)
import kubernetes.client, kubernetes.config, kubernetes.stream, yaml
assert kubernetes.__file__.startswith(sys.argv[1]) and not yaml.__with_libyaml__
"""


def version(root: Path = ROOT) -> str:
    """kubectl_multus.__version__, read without importing the package."""
    text = (root / "kubectl_multus" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit("no __version__ in kubectl_multus/__init__.py")
    return match.group(1)


def homepage(root: Path = ROOT) -> str:
    """The project's home URL: the one place it is set."""
    with (root / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["urls"]["Homepage"])


def tag(root: Path = ROOT) -> str:
    return f"v{version(root)}"


def archive_name(release_tag: str) -> str:
    return f"kubectl-multus-{release_tag}.tar.gz"


def with_homepage(template: str, url: str) -> str:
    """The template with its home URL (and the release URLs under it) replaced by `url`."""
    match = re.search(r"^  homepage: (\S+)$", template, re.MULTILINE)
    if not match:
        raise SystemExit("krew-manifest.yaml has no spec.homepage")
    return template.replace(match.group(1), url)


def render(template: str, release_tag: str, sha256: str) -> str:
    """What krew-release-bot makes of the template (rajatjindal/krew-release-bot
    pkg/source/template.go): `{{ .TagName }}`, and `{{ addURIAndSha "URL" .TagName }}` as
    `uri: URL` plus `sha256:` four spaces in. Here the sha256 is given, not downloaded."""

    def uri_and_sha(match: re.Match[str]) -> str:
        url = re.sub(r"\{\{\s*\.TagName\s*\}\}", release_tag, match.group(1))
        return f"uri: {url}\n    sha256: {sha256}"

    text = re.sub(r'\{\{\s*addURIAndSha\s+"([^"]+)"\s+\.TagName\s*\}\}', uri_and_sha, template)
    text = re.sub(r"\{\{\s*\.TagName\s*\}\}", release_tag, text)
    if "{{" in text:
        raise SystemExit(f"krew-manifest.yaml: unknown template action in {text[text.index('{{') :][:60]!r}")
    return text


def current_sha256(manifest: Path) -> str:
    match = (
        re.search(r"^    sha256: (\S+)$", manifest.read_text(encoding="utf-8"), re.MULTILINE)
        if manifest.exists()
        else None
    )
    return match.group(1) if match else EMPTY_SHA256


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def sync_manifests(root: Path = ROOT, sha256: str | None = None) -> list[Path]:
    """krew-manifest.yaml with pyproject's home URL; plugin.yaml rendered from it. The changed files."""
    template_path, plugin_path = root / "krew-manifest.yaml", root / "plugin.yaml"
    template = with_homepage(template_path.read_text(encoding="utf-8"), homepage(root))
    plugin = render(template, tag(root), sha256 or current_sha256(plugin_path))
    return [p for p, text in ((template_path, template), (plugin_path, plugin)) if write_if_changed(p, text)]


def _run(cmd: Sequence[str], what: str) -> None:
    done = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed ({' '.join(cmd)}):\n{done.stdout}{done.stderr}")


PIP_TARGET = (
    "--no-deps", "--no-compile", "--only-binary=:all:", "--implementation", "cp",
    "--python-version", "3.10", "--abi", "cp310", "--platform", "manylinux2014_x86_64",
)  # fmt: skip


def _vendor(pkg: Path, cache: Path | None = None) -> None:
    """The pinned set, resolved as for CPython 3.10 (the oldest supported), never built locally.
    With `cache`, a copy is kept there per content of vendor.txt (the tests build once a session)."""
    requirements = SCRIPTS / "vendor.txt"
    if cache is not None:
        key = hashlib.sha256(requirements.read_bytes() + " ".join(PIP_TARGET).encode()).hexdigest()[:16]
        kept = cache / f"vendor-{key}"
        if not kept.is_dir():
            partial = cache / f"vendor-{key}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            _vendor(partial)
            partial.rename(kept)
        shutil.copytree(kept, pkg)
        return
    _run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PIP_TARGET,
            "--target", str(pkg), "--requirement", str(requirements),
        ],
        "pip install of scripts/vendor.txt",
    )  # fmt: skip


def _prune(pkg: Path) -> None:
    for rel in PRUNE_DIRS:
        shutil.rmtree(pkg / rel, ignore_errors=True)
    for path in sorted(pkg.rglob("*"), reverse=True):
        if path.is_symlink() or (path.is_file() and (path.suffix in PRUNE_SUFFIXES or path.name.endswith("_test.py"))):
            path.unlink()
        elif path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)


def _stage(stage: Path, root: Path, vendor_cache: Path | None) -> None:
    pkg = stage / "pkg"
    _vendor(pkg, vendor_cache)
    shutil.copytree(root / "kubectl_multus", pkg / "kubectl_multus", ignore=shutil.ignore_patterns("__pycache__"))
    _prune(pkg)
    shutil.copyfile(SCRIPTS / "launcher.py", stage / "kubectl-multus")
    shutil.copyfile(SCRIPTS / "kubectl_complete-multus", stage / "kubectl_complete-multus")
    shutil.copyfile(root / "LICENSE", stage / "LICENSE")


def _compile(stage: Path, pythons: Iterable[str]) -> None:
    """Bytecode per interpreter, unchecked-hash: krew does not keep file times when it unpacks, so
    timestamp-checked .pyc files would all look stale and be rewritten (or, read-only, recompiled
    on every run). The store directory is per version and never changes, so no check is needed."""
    pkg = stage / "pkg"
    for python in pythons:
        _run(
            [
                python,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "-d",
                "pkg",
                "--invalidation-mode",
                "unchecked-hash",
                str(pkg),
            ],
            f"compiling with {python}",
        )
        _run([python, "-S", "-B", "-c", SMOKE, str(pkg)], f"importing the tool from the archive with {python}")


def _tar(stage: Path, target: Path, level: int) -> None:
    """Regular files and directories only (krew refuses anything else), sorted, fixed owner and time."""
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(stage.rglob("*"), key=lambda p: p.relative_to(stage).as_posix()):
            rel = path.relative_to(stage).as_posix()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise SystemExit(f"not a regular file or directory: {rel}")
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o755 if rel in EXECUTABLES else 0o644
                tar.addfile(info, io.BytesIO(data))


def build(
    out: Path, pythons: Sequence[str], *, level: int = 9, root: Path = ROOT, vendor_cache: Path | None = None
) -> Path:
    """Build the archive into `out`; write `out/plugin.yaml` for it. Returns the archive's path."""
    out.mkdir(parents=True, exist_ok=True)
    release_tag = tag(root)
    target = out / archive_name(release_tag)
    with tempfile.TemporaryDirectory(prefix="kubectl-multus-release-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        _stage(stage, root, vendor_cache)
        _compile(stage, pythons)
        _tar(stage, target, level)
    template = with_homepage((root / "krew-manifest.yaml").read_text(encoding="utf-8"), homepage(root))
    (out / "plugin.yaml").write_text(render(template, release_tag, sha256_of(target)), encoding="utf-8")
    return target


def _interpreters(given: Sequence[str]) -> list[str]:
    names = list(given) or list(PYTHONS)
    found = [shutil.which(n) or (n if Path(n).is_file() else None) for n in names]
    missing = [n for n, f in zip(names, found, strict=True) if f is None]
    if missing:
        raise SystemExit(
            f"not found: {', '.join(missing)}; a release precompiles for each Python the launcher supports "
            "(pass --python to build for fewer, e.g. to try the archive)"
        )
    return [f for f in found if f]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the archive goes (default: dist/)")
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="PY",
        help=f"interpreter to precompile bytecode for, repeatable (default: {' '.join(PYTHONS)})",
    )
    parser.add_argument("--compress-level", type=int, default=9, choices=range(1, 10), metavar="1-9")
    parser.add_argument("--manifests", action="store_true", help="only update krew-manifest.yaml and plugin.yaml")
    args = parser.parse_args(argv)
    if args.manifests:
        for path in sync_manifests():
            print(f"updated {path.relative_to(ROOT)}")
        return 0
    sync_manifests()
    target = build(args.out, _interpreters(args.python), level=args.compress_level)
    digest = sha256_of(target)
    if args.out.resolve() == (ROOT / "dist").resolve():
        sync_manifests(sha256=digest)  # plugin.yaml in the repo describes the archive just built
    size = target.stat().st_size / 1e6
    print(f"{target} ({size:.1f} MB)\nsha256 {digest}\nmanifest {args.out / 'plugin.yaml'}")
    print(f"try it: kubectl krew install --manifest {args.out / 'plugin.yaml'} --archive {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
