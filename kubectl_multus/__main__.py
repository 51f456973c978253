"""Entry point of the `kubectl-multus` executable. Keeps start-up light: the CLI is imported here."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

INTERRUPTED = 130


def _finish(code: int) -> None:
    """Exit with `code`. After Ctrl-C a worker thread may still sit in a socket read: letting the
    interpreter finalise around it can abort the process (SIGABRT) instead of exiting 130, so then
    the streams are flushed and the process ends at once. Cleanup (helper pods, rollbacks) has
    already run in the finally blocks by the time we get here."""
    if threading.active_count() > 1:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
                stream.flush()
        os._exit(code)
    sys.exit(code)


def main() -> None:
    code = 0
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
        code = INTERRUPTED
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    if code == INTERRUPTED:
        sys.stderr.write("kubectl multus: interrupted\n")
    _finish(code)


if __name__ == "__main__":
    main()
