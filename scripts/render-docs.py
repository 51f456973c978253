"""Regenerate what is rendered from the findings catalogue: docs/findings.md and the README's
list of checks. Tests fail until this has been run after a catalogue change."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubectl_multus.render import catalogue_markdown, checks_markdown  # noqa: E402

README_BLOCK = re.compile(r"(<!-- checks:[^\n]*-->\n)(.*?)(<!-- end of checks -->)", re.S)


def main() -> None:
    (ROOT / "docs" / "findings.md").write_text(catalogue_markdown())
    readme = ROOT / "README.md"
    text, n = README_BLOCK.subn(lambda m: m.group(1) + checks_markdown() + m.group(3), readme.read_text())
    if n != 1:
        sys.exit("README.md: the checks block markers are missing")
    readme.write_text(text)


if __name__ == "__main__":
    main()
