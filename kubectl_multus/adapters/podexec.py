"""Run argv in a container through the pods/exec WebSocket, the way that works on every client
version we support: no preloaded mode (it mangles JSON-looking output on 35 and 36 and merges
the streams), the exit status read from the Status on channel 3 ourselves."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

from kubectl_multus.errors import NodeAccessError


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes


class CommandNotFound(NodeAccessError):
    """The image has no such command (distroless images have no sh, tar or find)."""


class ExecRefused(NodeAccessError):
    """The kubelet would not start the command (container not running, not scheduled, forbidden)."""

    def __init__(self, message: str, http_status: int | None) -> None:
        super().__init__(message)
        self.http_status = http_status


def _exit_code(status: dict[str, Any]) -> int | None:
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" or cause.get("type") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None


def _refusal(exc: Exception) -> ExecRefused:
    """The client reports a failed upgrade as ApiException(status=0, reason='Handshake status 500 …')."""
    text = str(getattr(exc, "reason", "") or exc)
    match = re.search(r"Handshake status (\d{3})", text)
    code = int(match.group(1)) if match else getattr(exc, "status", None) or None
    body = text.split("-+-+-")[-1].strip() if "-+-+-" in text else text
    body = body[2:-1] if body[:2] in ("b'", 'b"') else body
    with contextlib.suppress(ValueError, AttributeError):
        body = str(json.loads(body).get("message") or body)  # a Status from the API server
    if code == 403:
        return ExecRefused(f"exec forbidden: {body[:300]}", code)
    return ExecRefused(f"exec refused ({code}): {body[:300]}", code)


def run(
    api_client: Any,
    namespace: str,
    pod: str,
    container: str,
    argv: list[str],
    *,
    stdin: bytes | None = None,
    timeout: float = 60.0,
) -> Completed:
    from kubernetes.client import ApiException, CoreV1Api
    from kubernetes.stream import stream
    from websocket import WebSocketException

    core: Any = CoreV1Api(api_client)
    try:
        ws = stream(
            core.connect_get_namespaced_pod_exec, pod, namespace, container=container, command=argv,
            stdin=stdin is not None, stdout=True, stderr=True, tty=False, _preload_content=False, binary=True,
        )  # fmt: skip
    except ApiException as exc:
        if exc.status in (401, 403, 404):
            raise ExecRefused(f"exec refused ({exc.status}): {_message(exc)}", exc.status) from exc
        raise _refusal(exc) from exc
    except (AttributeError, WebSocketException, OSError) as exc:  # 36.0.3 turns a failed handshake into AttributeError
        raise _refusal(exc) from exc
    try:
        if stdin is not None:
            ws.write_stdin(stdin)
            if hasattr(ws, "close_channel"):  # v5: half-close stdin so the command sees end of file
                ws.close_channel(0)
        ws.run_forever(timeout=timeout)
        if ws.is_open():
            raise NodeAccessError(f"exec of {argv[0]} in {namespace}/{pod} timed out after {timeout:.0f}s")
        out, err, raw = ws.read_stdout(), ws.read_stderr(), ws.read_channel(3)
    except (WebSocketException, OSError) as exc:
        raise NodeAccessError(f"exec of {argv[0]} in {namespace}/{pod} broke off: {exc or type(exc).__name__}") from exc
    finally:
        ws.close()
        sock = getattr(ws, "sock", None)
        if sock is not None:
            sock.shutdown()  # websocket-client leaves the socket open once the server has closed first
    status = json.loads(raw) if raw else {}
    code = _exit_code(status)
    if code is None:
        why = status.get("message") or "no exit status (the connection ended early)"
        if "executable file not found" in why or "no such file or directory" in why:
            raise CommandNotFound(f"{argv[0]} is not available in {namespace}/{pod}")
        raise NodeAccessError(f"exec of {argv[0]} in {namespace}/{pod} failed: {why}")
    return Completed(tuple(argv), code, _bytes(out), _bytes(err))


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value or "").encode()


def _message(exc: Any) -> str:
    try:
        body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
        return str(json.loads(body).get("message") or exc.reason)
    except (ValueError, TypeError, AttributeError):
        return str(exc.reason)
