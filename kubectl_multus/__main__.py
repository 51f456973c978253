"""Entry point of the `kubectl-multus` executable. Keeps start-up light: the CLI is imported here."""

from __future__ import annotations

import os
import sys


def main() -> None:
    try:
        # The krew archive's kubectl_complete-multus shim runs this executable with the variable set
        # (it cannot know where krew put the plugin's files): answer as the completer.
        if os.environ.get("_KUBECTL_MULTUS_COMPLETE") == "complete_kubectl":
            from kubectl_multus.completion import main as complete

            complete()
            return
        from kubectl_multus.cli import run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("kubectl multus: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
