"""LoginGuard: the page's password check, slowing down and then locking out repeated wrong passwords.

Gradio's own `auth=[(user, password)]` lets a script try passwords as fast as the server answers. The
guard is given to `launch(auth=guard.check)` instead: every wrong password waits `failure_delay_s` before
the answer, and after `max_failures` wrong passwords for one user name within `lockout_s`, that name is
refused (even with the right password) until `lockout_s` has passed since its last failure. Passwords are
compared in constant time. `check` is a coroutine, so waiting never blocks Gradio's event loop.

    guard = LoginGuard([("admin", "secret")])
    demo.launch(auth=guard.check)
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("app.login")
MAX_TRACKED_NAMES = 10_000  # bound the memory an attacker trying many user names can take


@dataclass
class _Failures:
    count: int = 0
    last_s: float = 0.0


class LoginGuard:
    """Checks user:password pairs for Gradio's login, with a delay per failure and a lockout per user name."""

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        max_failures: int = 5,
        lockout_s: float = 60.0,
        failure_delay_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        if not pairs:
            raise ValueError("LoginGuard needs at least one user:password pair")
        self._pairs = [(user.encode(), password.encode()) for user, password in pairs]
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.failure_delay_s = failure_delay_s
        self._clock = clock
        self._sleep = sleep
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def locked(self, username: str) -> bool:
        """True while this user name has too many recent failures (its lockout has not passed yet)."""
        with self._lock:
            entry = self._failures.get(username)
            if entry is None:
                return False
            if self._clock() - entry.last_s >= self.lockout_s:
                del self._failures[username]
                return False
            return entry.count >= self.max_failures

    def _matches(self, username: str, password: str) -> bool:
        given_user, given_password = username.encode(), password.encode()
        found = False
        for user, secret in self._pairs:  # no early exit: the time taken does not say which part was wrong
            found |= hmac.compare_digest(user, given_user) & hmac.compare_digest(secret, given_password)
        return found

    def _record_failure(self, username: str) -> int:
        with self._lock:
            if username not in self._failures and len(self._failures) >= MAX_TRACKED_NAMES:
                oldest = min(self._failures, key=lambda name: self._failures[name].last_s)
                del self._failures[oldest]
            entry = self._failures.setdefault(username, _Failures())
            entry.count += 1
            entry.last_s = self._clock()
            return entry.count

    async def check(self, username: str, password: str) -> bool:
        """Gradio's auth callable: True lets the user in."""
        if self.locked(username):
            log.warning("login refused for %r: locked out after %d wrong passwords", username, self.max_failures)
            await self._sleep(self.failure_delay_s)
            return False
        if self._matches(username, password):
            with self._lock:
                self._failures.pop(username, None)
            return True
        count = self._record_failure(username)
        log.warning("wrong password for %r (%d in a row)", username, count)
        await self._sleep(self.failure_delay_s)
        return False
