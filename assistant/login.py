"""Signing in to the chat window (``stdnews chat --auth``): a constant-time credential check for Gradio's
``auth``, and failed logins slowed per client address. Gradio calls an ``auth`` callable with the user name and
password only, so the slowing is an ASGI middleware on ``POST /login`` that sees the client's address and the
answer Gradio gave (200 signed in, 400 wrong credentials)."""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN_PATHS = {"/login", "/login/"}


def credentials_check(auth: tuple[str, str]) -> Callable[[str, str], bool]:
    """Gradio's ``auth`` callable for one user: both name and password compared in constant time."""
    user, password = auth[0].encode(), auth[1].encode()

    def check(username: str, given: str) -> bool:
        same_user = hmac.compare_digest((username or "").encode(), user)
        same_password = hmac.compare_digest((given or "").encode(), password)
        return same_user and same_password

    return check


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class LoginLimiter:
    """Failed logins per client address: ``free`` failures within ``window`` seconds cost nothing; from then on
    the address waits ``base_delay`` after its last failure, doubled with each further failure, up to
    ``max_delay``. A success, or a quiet ``window`` after the wait, forgets the address."""

    def __init__(self, free: int = 5, window: float = 60.0, base_delay: float = 1.0, max_delay: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_addresses: int = 10_000) -> None:
        self.free, self.window, self.base_delay, self.max_delay = free, window, base_delay, max_delay
        self.clock = clock
        self.max_addresses = max_addresses
        self._seen: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def _delay(self, count: int) -> float:
        if count < self.free:
            return 0.0
        return min(self.max_delay, self.base_delay * 2 ** (count - self.free))

    def _current(self, address: str, now: float) -> _Failures | None:
        f = self._seen.get(address)
        if f is not None and now - f.last > self.window + self._delay(f.count):
            del self._seen[address]
            return None
        return f

    def wait(self, address: str) -> float:
        """Seconds this address must still wait before its next attempt is heard (0: now)."""
        with self._lock:
            now = self.clock()
            f = self._current(address, now)
            return 0.0 if f is None else max(0.0, f.last + self._delay(f.count) - now)

    def failed(self, address: str) -> None:
        with self._lock:
            now = self.clock()
            f = self._current(address, now)
            if f is None:
                if len(self._seen) >= self.max_addresses:  # bounded memory: drop the forgotten, else the oldest
                    for a in list(self._seen):
                        self._current(a, now)
                    if len(self._seen) >= self.max_addresses:
                        del self._seen[next(iter(self._seen))]
                f = self._seen[address] = _Failures()
            f.count += 1
            f.last = now

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._seen.pop(address, None)


class LoginThrottle:
    """ASGI middleware: a ``POST /login`` from an address that must wait is refused (429, ``Retry-After``)
    without checking its credentials; Gradio's answer to the others is counted against their address."""

    def __init__(self, app: ASGIApp, limiter: LoginLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "?"
        wait = self.limiter.wait(address)
        if wait > 0:
            await _refuse(send, math.ceil(wait))
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    self.limiter.succeeded(address)
                elif message["status"] in (400, 401):
                    self.limiter.failed(address)
            await send(message)

        await self.app(scope, receive, counting_send)


async def _refuse(send: Send, retry_after: int) -> None:
    body = (b'{"detail": "Too many failed sign-ins from this address; try again in %d s."}' % retry_after)
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", str(retry_after).encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
