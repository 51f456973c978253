#!/usr/bin/env python3
"""kubectl multus as the krew archive ships it: this file (named kubectl-multus there), pkg/ with
the tool and its pure-Python dependencies (bytecode included) and LICENSE, side by side."""

import os
import sys

if sys.version_info < (3, 10):  # noqa: UP036 - this runs under whatever python3 is on PATH
    version = sys.version.split()[0]
    sys.stderr.write(f"kubectl multus: error: needs Python 3.10 or newer as python3 on PATH, found {version}\n")
    sys.exit(3)

# krew runs this file through a symlink in ~/.krew/bin: resolve it to find pkg/ beside the real file.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "pkg"))
# rich (typer's optional pretty help) is not in the archive: typer must not look for it.
os.environ["TYPER_USE_RICH"] = "0"

from kubectl_multus.__main__ import main  # after pkg/ is on the path

main()
