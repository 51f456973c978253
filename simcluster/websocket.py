"""Just enough RFC 6455 for the Kubernetes exec channel protocol (v4 and v5).

Each binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final
`Status`, 4 resize. v5 adds [255, channel], which half-closes a stream (the client closes
stdin so a `cat > file` in the container sees end of file).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR = 0, 1, 2, 3
CLOSE_STREAM = 255


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def choose_protocol(offered: str) -> str | None:
    wanted = [p.strip() for p in offered.split(",") if p.strip()]
    return next((p for p in PROTOCOLS if p in wanted), None)


@dataclass
class Frame:
    opcode: int
    payload: bytes


class WebSocket:
    def __init__(self, rfile: BinaryIO, wfile: BinaryIO, sock: socket.socket) -> None:
        self.rfile, self.wfile, self.sock = rfile, wfile, sock

    def _read_exact(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise ConnectionError("websocket closed")
        return data

    def read_frame(self) -> Frame:
        head = self._read_exact(2)
        opcode = head[0] & 0x0F
        masked = head[1] & 0x80
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8))[0]
        mask = self._read_exact(4) if masked else b""
        payload = self._read_exact(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return Frame(opcode, payload)

    def send(self, payload: bytes, opcode: int = 0x2) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + payload)
        self.wfile.flush()

    def send_channel(self, channel: int, data: bytes, chunk: int = 32 * 1024) -> None:
        if not data:
            self.send(bytes([channel]))
        for i in range(0, len(data), chunk):
            self.send(bytes([channel]) + data[i : i + chunk])

    def send_status(self, exit_code: int | None, message: str = "") -> None:
        status: dict[str, Any]
        if exit_code == 0:
            status = {"metadata": {}, "status": "Success"}
        elif exit_code is None:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "InternalError",
                "details": {"causes": [{"message": message}]},
            }
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: error executing command, exit status {exit_code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
            }
        self.send(bytes([ERROR]) + json.dumps(status).encode())

    def close(self, code: int = 1000) -> None:
        with contextlib.suppress(OSError):
            self.send(struct.pack("!H", code), opcode=0x8)

    def read_stdin(self, *, half_close: bool, idle: float) -> bytes:
        """Stdin until the client closes it: the v5 CLOSE of channel 0, a close frame, or (v4,
        which cannot half-close) `idle` seconds without data."""
        data = bytearray()
        if not half_close:
            self.sock.settimeout(idle)
        try:
            while True:
                frame = self.read_frame()
                if frame.opcode == 0x8:
                    break
                if frame.opcode == 0x9:
                    self.send(frame.payload, opcode=0xA)
                    continue
                if not frame.payload:
                    continue
                channel, body = frame.payload[0], frame.payload[1:]
                if channel == CLOSE_STREAM and body[:1] == bytes([STDIN]):
                    break
                if channel == STDIN:
                    data += body
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self.sock.settimeout(None)
        return bytes(data)
