"""Entry point of the `kubectl-multus` executable. Keeps start-up light: the CLI is imported here."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from kubectl_multus.cli import run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("kubectl multus: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
