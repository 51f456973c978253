"""plugin.yaml and krew-manifest.yaml: krew's rules, the release bot's template, one home URL."""

from __future__ import annotations

import copy
import re
import sys
from typing import Any

import pytest
import yaml

from kubectl_multus import __version__
from tests.packaging import krew
from tests.packaging.conftest import ROOT, build_release

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PLUGIN = ROOT / "plugin.yaml"
TEMPLATE = ROOT / "krew-manifest.yaml"
REGENERATE = "run: python scripts/build-release.py --manifests"


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def plugin() -> dict[str, Any]:
    return dict(yaml.safe_load(PLUGIN.read_text()))


def bot_render(template: str, tag: str, sha256: str) -> str:
    """krew-release-bot's two template actions, written apart from the release script's: the tag,
    and addURIAndSha, which yields `uri: URL` and then `sha256:` indented by four spaces."""
    tag_action = re.compile(r"\{\{\s*\.TagName\s*\}\}")
    text = re.sub(
        r'\{\{\s*addURIAndSha\s+"(.+?)"\s+\.TagName\s*\}\}',
        lambda m: f"uri: {tag_action.sub(tag, m.group(1))}\n    sha256: {sha256}",
        template,
    )
    return tag_action.sub(tag, text)


def without_release_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    del out["spec"]["version"]
    for platform in out["spec"]["platforms"]:
        del platform["uri"], platform["sha256"]
    return out


def test_plugin_manifest_passes_krews_rules() -> None:
    assert krew.problems(plugin(), "multus") == []  # the index file will be plugins/multus.yaml


def test_plugin_version_is_the_package_version_with_a_v() -> None:
    assert plugin()["spec"]["version"] == f"v{__version__}"


def test_template_renders_to_plugin_yaml_apart_from_version_uri_and_sha256() -> None:
    template = TEMPLATE.read_text()
    assert "{{ .TagName }}" in template and "addURIAndSha" in template
    rendered = yaml.safe_load(bot_render(template, "v9.8.7", "ab" * 32))
    assert rendered["spec"]["version"] == "v9.8.7"
    assert rendered["spec"]["platforms"][0]["uri"].endswith("/v9.8.7/kubectl-multus-v9.8.7.tar.gz")
    assert rendered["spec"]["platforms"][0]["sha256"] == "ab" * 32
    assert krew.problems(rendered, "multus") == []
    assert without_release_fields(rendered) == without_release_fields(plugin()), REGENERATE


def test_plugin_yaml_is_exactly_the_template_rendered_for_this_version() -> None:
    current = plugin()
    sha = current["spec"]["platforms"][0]["sha256"]
    assert PLUGIN.read_text() == bot_render(TEMPLATE.read_text(), current["spec"]["version"], sha), REGENERATE
    # and the release script renders as the bot does
    assert build_release.render(TEMPLATE.read_text(), current["spec"]["version"], sha) == PLUGIN.read_text()


def test_home_url_is_one_setting() -> None:
    project = pyproject()["project"]
    home = project["urls"]["Homepage"]
    assert all(url.startswith(home) for url in project["urls"].values()), project["urls"]
    assert build_release.with_homepage(TEMPLATE.read_text(), home) == TEMPLATE.read_text(), REGENERATE
    spec = plugin()["spec"]
    assert spec["homepage"] == home
    assert (
        spec["platforms"][0]["uri"]
        == f"{home}/releases/download/{spec['version']}/kubectl-multus-{spec['version']}.tar.gz"
    )


def test_changing_the_home_url_moves_every_url_of_the_manifests() -> None:
    moved = build_release.with_homepage(TEMPLATE.read_text(), "https://example.org/multus")
    assert "github.com/kubectl-multus" not in moved
    assert krew.problems(yaml.safe_load(bot_render(moved, "v1.0.0", "cd" * 32)), "multus") == []


def test_one_archive_for_linux_and_darwin_on_amd64_and_arm64() -> None:
    (platform,) = plugin()["spec"]["platforms"]
    for os_ in ("linux", "darwin"):
        for arch in ("amd64", "arm64"):
            assert krew.selector_matches(platform["selector"], os_, arch)
    assert not krew.selector_matches(platform["selector"], "windows", "amd64")  # krew runs only .exe there


def test_files_ship_the_launcher_completion_shim_code_and_license() -> None:
    (platform,) = plugin()["spec"]["platforms"]
    sources = [f["from"] for f in platform["files"]]
    assert platform["bin"] in sources
    assert sorted(sources) == sorted(["kubectl-multus", "kubectl_complete-multus", "pkg", "LICENSE"])
    assert all(f["to"] == "." for f in platform["files"])


def test_caveats_say_what_it_needs() -> None:
    caveats = plugin()["spec"]["caveats"]
    for needed in ("Python 3.10", "python3", "pods/exec", "hostPath", "privileged", "deploy/rbac.yaml"):
        assert needed in caveats
    assert "kubectl_complete-multus" in caveats


def _mutations() -> list[Any]:
    def case(name: str, change: Any, expected: str) -> Any:
        return pytest.param(change, expected, id=name)

    def platform0(key: str, value: Any) -> Any:
        return lambda m: m["spec"]["platforms"][0].__setitem__(key, value)

    return [
        case("api-version", lambda m: m.__setitem__("apiVersion", "krew/v1"), "apiVersion"),
        case("name-with-dot", lambda m: m["metadata"].__setitem__("name", "mul.tus"), "invalid plugin name"),
        case("reserved-name", lambda m: m["metadata"].__setitem__("name", "con"), "invalid plugin name"),
        case("no-v", lambda m: m["spec"].__setitem__("version", "0.1.0"), "not semver"),
        case("not-semver", lambda m: m["spec"].__setitem__("version", "v1.2"), "not semver"),
        case("short-description-long", lambda m: m["spec"].__setitem__("shortDescription", "x" * 51), "longer than"),
        case("short-description-lines", lambda m: m["spec"].__setitem__("shortDescription", "a\nb"), "one non-empty"),
        case("description-wide", lambda m: m["spec"].__setitem__("description", "y" * 81), "wrapped"),
        case("sha-uppercase", platform0("sha256", "AB" * 32), "sha256"),
        case("sha-short", platform0("sha256", "ab" * 31), "sha256"),
        case("no-bin", platform0("bin", ""), "bin is required"),
        case("no-uri", platform0("uri", None), "uri is required"),
        case("files-empty", platform0("files", []), "files"),
        case("file-without-to", platform0("files", [{"from": "LICENSE"}]), "files"),
        case("selector-empty", platform0("selector", {}), "selector is required"),
        case("selector-key", platform0("selector", {"matchLabels": {"distro": "k3s"}}), "only use os and arch"),
        case("selector-unsupported", platform0("selector", {"matchLabels": {"os": "plan9"}}), "no supported"),
        case(
            "overlapping-platforms",
            lambda m: m["spec"]["platforms"].append(copy.deepcopy(m["spec"]["platforms"][0])),
            "also matched",
        ),
    ]


@pytest.mark.parametrize(("change", "expected"), _mutations())
def test_the_rule_checks_catch_what_krew_rejects(change: Any, expected: str) -> None:
    broken = plugin()
    change(broken)
    found = krew.problems(broken, "multus")
    assert any(expected in p for p in found), found
