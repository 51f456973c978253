"""What krew does with a manifest and an archive, for tests (krew itself is not available to CI).

The rules follow kubernetes-sigs/krew: internal/index/validation/validate.go (ValidatePlugin),
cmd/validate-krew-manifest/main.go (what the krew-index CI adds), internal/download/downloader.go
(extraction) and internal/installation/{install,move}.go (files, bin link).
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import os
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

API_VERSION = "krew.googlecontainertools.github.com/v1alpha2"
NAME = re.compile(r"^[\w-]+$")
SHA256 = re.compile(r"^[a-f0-9]{64}$")
# semver with krew's leading v (internal/installation/semver/version.go)
VERSION = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
SUPPORTED = (
    {("windows", a) for a in ("386", "amd64", "arm64")}
    | {("linux", a) for a in ("386", "amd64", "arm", "arm64", "ppc64le")}
    | {("darwin", a) for a in ("386", "amd64", "arm64")}
)
LICENSE_NAMES = {
    "license",
    "license.txt",
    "license.md",
    "licenses",
    "licenses.txt",
    "licenses.md",
    "copying",
    "copying.txt",
}
SHORT_DESCRIPTION_MAX = 50  # the krew-index bot's limit for new plugins (krew-index PRs #3673, #1882)
DESCRIPTION_WIDTH = 80  # ... and its line width for description


def selector_matches(selector: dict[str, Any], os_: str, arch: str) -> bool:
    labels = {"os": os_, "arch": arch}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value, values = labels.get(expr["key"]), expr.get("values") or []
        op = expr["operator"]
        if (op == "In" and value not in values) or (op == "NotIn" and value in values):
            return False
        if (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return True


def problems(manifest: Any, expected_name: str) -> list[str]:
    """Everything krew and the krew-index CI would reject; empty when the manifest passes."""
    if not isinstance(manifest, dict):
        return ["not a mapping"]
    out: list[str] = []
    if manifest.get("apiVersion") != API_VERSION:
        out.append(f"apiVersion must be {API_VERSION}")
    if manifest.get("kind") != "Plugin":
        out.append("kind must be Plugin")
    name = str((manifest.get("metadata") or {}).get("name") or "")
    if not NAME.match(name) or name.lower() in WINDOWS_RESERVED:
        out.append(f"invalid plugin name {name!r}")
    if name != expected_name:
        out.append(f"plugin name {name!r} is not {expected_name!r}")
    spec = manifest.get("spec") or {}
    short = spec.get("shortDescription")
    if not isinstance(short, str) or not short.strip() or "\n" in short or "\r" in short:
        out.append("shortDescription must be one non-empty line")
    elif len(short) > SHORT_DESCRIPTION_MAX:
        out.append(f"shortDescription longer than {SHORT_DESCRIPTION_MAX} characters")
    description = spec.get("description")
    if not isinstance(description, str) or not description.strip():
        out.append("description is required")
    elif any(len(line) > DESCRIPTION_WIDTH for line in description.splitlines()):
        out.append(f"description lines must be wrapped at {DESCRIPTION_WIDTH} characters")
    if not VERSION.match(str(spec.get("version") or "")):
        out.append(f"version {spec.get('version')!r} is not semver starting with v")
    if not str(spec.get("homepage") or "").startswith("https://"):
        out.append("homepage must be an https URL")
    platforms = spec.get("platforms") or []
    if not platforms:
        out.append("no platforms")
    covered: dict[tuple[str, str], int] = {}
    for i, platform in enumerate(platforms):
        where = f"platforms[{i}]"
        if not platform.get("uri"):
            out.append(f"{where}: uri is required")
        if not SHA256.match(str(platform.get("sha256") or "")):
            out.append(f"{where}: sha256 must be 64 lowercase hex digits")
        if not platform.get("bin"):
            out.append(f"{where}: bin is required")
        files = platform.get("files")
        if files is not None and (not files or any(not f.get("from") or not f.get("to") for f in files)):
            out.append(f"{where}: files must be non-empty, each with from and to")
        selector = platform.get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            out.append(f"{where}: selector is required and must not be empty")
            continue
        keys = set(selector.get("matchLabels") or {}) | {e.get("key") for e in selector.get("matchExpressions") or []}
        if not keys <= {"os", "arch"}:
            out.append(f"{where}: selector may only use os and arch, not {sorted(keys - {'os', 'arch'})}")
        matched = [pair for pair in sorted(SUPPORTED) if selector_matches(selector, *pair)]
        if not matched:
            out.append(f"{where}: selector matches no supported os/arch")
        for pair in matched:
            if pair in covered:
                out.append(f"{where}: {pair[0]}/{pair[1]} is also matched by platforms[{covered[pair]}]")
            covered[pair] = i
    return out


def platform_for(manifest: dict[str, Any], os_: str, arch: str) -> dict[str, Any]:
    for platform in manifest["spec"]["platforms"]:
        if selector_matches(platform["selector"], os_, arch):
            return dict(platform)
    raise LookupError(f"no platform for {os_}/{arch}")


def extract(archive: Path, target: Path) -> None:
    """internal/download: sniff gzip, then regular files and directories only; modes from the
    headers (less the umask), file times not kept."""
    with archive.open("rb") as f:
        if f.read(2) != b"\x1f\x8b":
            raise ValueError(f"{archive}: not application/x-gzip")
    umask = os.umask(0)
    os.umask(umask)
    with gzip.open(archive) as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        for member in tar:
            if ".." in member.name or member.name.startswith(("/", "\\")):
                raise ValueError(f"refusing to unpack archive with suspicious entry {member.name!r}")
            path = target / member.name
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True, mode=member.mode & ~umask)
            elif member.isreg():
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with path.open("wb") as out:
                    shutil.copyfileobj(source, out)
                path.chmod(member.mode & ~umask)
            else:
                raise ValueError(f"unable to handle file type {member.type!r} for {member.name!r} in tar")


def move_files(source: Path, install_dir: Path, files: list[dict[str, str]]) -> None:
    """internal/installation/move.go: a `from` that exists moves as one (to "." keeps its name);
    otherwise `from` is a glob whose matches move into the directory `to`."""
    install_dir.mkdir(parents=True)
    for op in files:
        direct = source / op["from"]
        if direct.exists():
            moves = [(direct, install_dir / (direct.name if op["to"] == "." else op["to"]))]
        else:
            matches = sorted(p for p in source.iterdir() if fnmatch.fnmatch(p.name, op["from"]))
            if not matches:
                raise ValueError(f"no files in the plugin archive matched the glob pattern={op['from']}")
            moves = [(m, install_dir / op["to"] / m.name) for m in matches]
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))


def install(manifest: dict[str, Any], archive: Path, krew_root: Path, os_: str = "linux", arch: str = "amd64") -> Path:
    """`kubectl krew install --manifest M --archive A` into krew_root: verify the sha256, unpack,
    move the files into store/<name>/<version>, link bin/kubectl-<name>. Returns the link."""
    platform = platform_for(manifest, os_, arch)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != platform["sha256"]:
        raise ValueError(f"checksum does not match, want: {platform['sha256']}, got {digest}")
    name, version = manifest["metadata"]["name"], manifest["spec"]["version"]
    download = krew_root / "download"
    extract(archive, download)
    install_dir = krew_root / "store" / name / version
    move_files(download, install_dir, platform.get("files") or [{"from": "*", "to": "."}])
    binary = (install_dir / platform["bin"]).resolve()
    if not binary.is_relative_to(install_dir.resolve()):
        raise ValueError("bin is outside the installation directory")
    if not binary.is_file():
        raise ValueError(
            f"can't create symbolic link, source binary ({platform['bin']!r}) cannot be found in extracted archive"
        )
    link = krew_root / "bin" / f"kubectl-{name.replace('-', '_')}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(binary)
    return link


def licenses(install_dir: Path) -> list[str]:
    """The license files krew-index's validate-krew-manifest looks for after installing."""
    return sorted(p.name for p in install_dir.iterdir() if p.name.lower() in LICENSE_NAMES)
