"""Unit tests of app.login_guard.LoginGuard with a fake clock (no real waiting).

The real app with it is tried in tests/reliability/test_reliability_app_security.py.

    .venv/bin/python -m pytest tests/app/test_login_guard.py
"""

from __future__ import annotations

import asyncio
import inspect

import pytest

from app.login_guard import LoginGuard


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def guard(clock: FakeTime) -> LoginGuard:
    return LoginGuard([("alice", "right"), ("bob", "other")], max_failures=3, lockout_s=60, failure_delay_s=1.0,
                      clock=clock.clock, sleep=clock.sleep)  # fmt: skip


def check(guard: LoginGuard, user: str, password: str) -> bool:
    return asyncio.run(guard.check(user, password))


def test_gradio_sees_a_coroutine_function() -> None:
    """Gradio awaits auth only when inspect says it is a coroutine function (else a coroutine object is truthy)."""
    assert inspect.iscoroutinefunction(LoginGuard([("a", "b")]).check)


def test_right_password_passes_at_once_and_wrong_ones_wait(guard: LoginGuard, clock: FakeTime) -> None:
    assert check(guard, "alice", "right") and clock.slept == []
    assert not check(guard, "alice", "wrong") and clock.slept == [1.0]
    assert not check(guard, "bob", "right"), "a password of another user does not count"
    assert not check(guard, "mallory", "right")


def test_repeated_failures_lock_the_name_even_for_the_right_password(guard: LoginGuard, clock: FakeTime) -> None:
    for _ in range(3):
        assert not check(guard, "alice", "guess")
    assert guard.locked("alice")
    assert not check(guard, "alice", "right"), "locked out: the right password is refused too"
    assert check(guard, "bob", "other"), "other users are not affected"
    clock.now += 59
    assert not check(guard, "alice", "right")
    clock.now += 2
    assert check(guard, "alice", "right"), "the lockout ends lockout_s after the last failure"
    assert not guard.locked("alice")


def test_a_success_resets_the_count(guard: LoginGuard) -> None:
    for _ in range(2):
        check(guard, "alice", "guess")
    assert check(guard, "alice", "right")
    for _ in range(2):
        check(guard, "alice", "guess")
    assert not guard.locked("alice")


def test_needs_a_pair() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LoginGuard([])
