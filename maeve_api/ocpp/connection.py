"""The ``ocpp`` library's connection interface (async ``recv``/``send``) over an ASGI websocket."""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.types import Receive, Send

#: The longest frame read; OCPP messages are far smaller (a certificate is at most 5,500 characters).
MAX_FRAME = 64 * 1024


class Closed(Exception):
    """The websocket is closed."""


def _frame_type(text: str) -> tuple[int | None, str | None]:
    """The message type id and unique id of a frame, or Nones when it is not a well-formed OCPP-J frame."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return None, None
    if isinstance(frame, list) and len(frame) >= 2 and isinstance(frame[0], int) and isinstance(frame[1], str):
        return frame[0], frame[1]
    return None, None


class AsgiWebSocket:
    """Reads frames as they arrive, so that a station call sent while its previous one is unanswered is refused
    at once (OCPP-J allows one call in flight each way) instead of queueing behind it."""

    def __init__(self, receive: Receive, send: Send, error_code: str) -> None:
        self._receive = receive
        self._send = send
        self._error_code = error_code
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._open_call: str | None = None
        self._closed = False
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                message = await self._receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message["type"] != "websocket.receive":
                    continue
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
                if len(text) > MAX_FRAME:
                    await self.send(json.dumps([4, "-1", "FormatViolation" if self._error_code != "1.6"
                                                else "FormationViolation", "frame too large", {}]))
                    continue
                kind, unique_id = _frame_type(text)
                if kind == 2:
                    if self._open_call is not None:
                        await self.send(
                            json.dumps([4, unique_id, "GenericError", "a previous call is still unanswered", {}])
                        )
                        continue
                    self._open_call = unique_id
                await self._inbox.put(text)
        finally:
            self._closed = True
            await self._inbox.put(None)

    async def recv(self) -> str:
        text = await self._inbox.get()
        if text is None:
            await self._inbox.put(None)
            raise Closed
        return text

    async def send(self, text: str) -> None:
        if self._closed:
            raise Closed
        kind, unique_id = _frame_type(text)
        if kind in (3, 4) and unique_id == self._open_call:
            self._open_call = None
        try:
            await self._send({"type": "websocket.send", "text": text})
        except Exception as exc:  # the server raises its own error types for a socket gone away
            self._closed = True
            raise Closed from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
        if self._reader is not None:
            self._reader.cancel()
