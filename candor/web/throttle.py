"""Sign-in throttling: too many failed sign-ins for one name, or from one address, within a
window, and further attempts get 429 with `retry-after` until the oldest failure leaves the window
(the right password included, or the throttle would only slow guessing down).

CANDOR_SIGNIN_MAX_FAILURES (default 5) is the limit per name; an address may fail four times as
often (people behind one NAT). CANDOR_SIGNIN_WINDOW_S (default 900) is the window. An attempt
counts as a failure from the moment it starts, so parallel guesses cannot all slip past the
check; a successful one is taken back. Counts live in each server process.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from candor.config import env
from candor.errors import AccessError, InvalidRequestError

PER_ADDRESS_FACTOR = 4
MAX_TRACKED = 10_000  # names and addresses kept at once; the oldest are forgotten first


def _setting(name: str, default: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(f"must be a whole number, got {raw!r}", field=name) from None
    if value < 1:
        raise InvalidRequestError(f"must be >= 1, got {value}", field=name)
    return value


class SigninThrottle:
    def __init__(self, max_failures: int | None = None, window_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures or _setting("CANDOR_SIGNIN_MAX_FAILURES", 5)
        self.window_s = window_s or _setting("CANDOR_SIGNIN_WINDOW_S", 900)
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _add(self, key: str, now: float) -> None:
        if key not in self._failures:
            if len(self._failures) >= MAX_TRACKED:
                self._failures.pop(next(iter(self._failures)))
            self._failures[key] = deque()
        self._failures[key].append(now)

    def attempt(self, username: str, address: str) -> None:
        """Call before checking a password; raises 429 while the name or address is throttled."""
        now = self.clock()
        checks = ((_user_key(username), self.max_failures, "this account"),
                  (f"addr:{address}", self.max_failures * PER_ADDRESS_FACTOR, "your address"))
        for key, limit, who in checks:
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = max(1, math.ceil(times[0] + self.window_s - now))
                raise AccessError(429, "rate_limit_error",
                                  f"too many failed sign-ins for {who}; try again in {_minutes(wait)}",
                                  headers={"retry-after": str(wait)})
        for key, _, _ in checks:
            self._add(key, now)

    def succeeded(self, username: str, address: str) -> None:
        """The attempt was right: forget the name's failures and take this attempt back."""
        self._failures.pop(_user_key(username), None)
        times = self._failures.get(f"addr:{address}")
        if times:
            times.pop()


def _user_key(username: str) -> str:
    return "user:" + username[:120]  # no account has a longer name; keeps memory bounded


def _minutes(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
