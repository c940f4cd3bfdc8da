"""A small blocking client for the control socket (scripts, tests, benchmarks, the demo).

    with Client("backorder.sock") as c:
        c.call("stock.receive", sku="A1", qty=10)

``call`` returns the ``result`` or raises ``CallError`` with the daemon's stable code.
``pipeline`` sends many requests before reading any reply (replies may come back in any
order; they are matched by id).
"""

from __future__ import annotations

import itertools
import socket
from typing import Any

import msgspec

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class CallError(Exception):
    """The daemon refused a request (``code`` is its stable error code) or could not be reached."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Client:
    def __init__(self, path: str, timeout: float | None = 30.0, *, sock: socket.socket | None = None) -> None:
        if sock is not None:  # already connected (see ``tcp``)
            self.sock = sock
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(str(path))
            except OSError:
                self.sock.close()
                raise
        self._file = self.sock.makefile("rb")
        self._ids = itertools.count(1)
        self.events: list[dict] = []  # event lines received while waiting for replies

    @classmethod
    def tcp(
        cls,
        host: str,
        port: int,
        token: str,
        *,
        ssl_context=None,
        server_hostname: str | None = None,
        timeout: float | None = 30.0,
    ) -> Client:
        """Connect to the daemon's TCP listener (``[tcp]``) and authenticate with a bearer
        token; TLS with ``ssl_context``. Raises CallError("unauthorized") for a bad token."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
            except OSError:
                sock.close()
                raise
        client = cls("", sock=sock)
        try:
            client.call("auth", token=token)
        except (CallError, ConnectionError):
            client.close()
            raise
        return client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> dict:
        line = self._file.readline()
        if not line:
            raise ConnectionError("the daemon closed the connection")
        return _decoder.decode(line)

    def reply(self, req_id: Any = None) -> dict:
        """The next reply (with that id, if given); event lines are kept in ``events``."""
        while True:
            msg = self.read_line()
            if "event" in msg and "ok" not in msg:
                self.events.append(msg)
                continue
            if req_id is None or msg.get("id") == req_id:
                return msg

    def request(self, op: str, **fields: Any) -> dict:
        """Send one request and return the whole reply object."""
        req_id = next(self._ids)
        self.sock.sendall(_encoder.encode({"op": op, "id": req_id, **fields}) + b"\n")
        return self.reply(req_id)

    def call(self, op: str, **fields: Any) -> Any:
        reply = self.request(op, **fields)
        if not reply["ok"]:
            raise CallError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    def pipeline(self, requests: list[dict], window: int = 500) -> list[dict]:
        """Send requests ``window`` at a time without waiting between them, collect every
        reply; returns replies in request order. (A client that writes without ever
        reading would stall itself once the daemon's in-flight limit is reached.)"""
        out: list[dict] = []
        for start in range(0, len(requests), window):
            out += self._pipeline(requests[start : start + window])
        return out

    def _pipeline(self, requests: list[dict]) -> list[dict]:
        ids = []
        buf = bytearray()
        for req in requests:
            req_id = next(self._ids)
            ids.append(req_id)
            buf += _encoder.encode({**req, "id": req_id}) + b"\n"
        self.sock.sendall(buf)
        got: dict[Any, dict] = {}
        while len(got) < len(ids):
            msg = self.read_line()
            if "event" in msg and "ok" not in msg:
                self.events.append(msg)
                continue
            got[msg.get("id")] = msg
        return [got[i] for i in ids]
