"""A fair, bounded admission queue: up to `capacity` generations at a time per loaded model (the
embedded engine's sequence slots; one for engines that run one request at a time).

Waiters are served first come, first served. When `max_waiting` requests already wait, a new one
is refused at once with `OverloadedError` instead of hanging.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from candor.errors import OverloadedError


class GenerationQueue:
    def __init__(self, name: str, max_waiting: int = 16, capacity: int = 1):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.name = name
        self.max_waiting = max_waiting
        self.capacity = capacity
        self._running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def depth(self) -> int:
        """Requests waiting for their turn (not counting the one running)."""
        return len(self._waiters)

    @property
    def running(self) -> int:
        """Requests holding a slot now."""
        return self._running

    @property
    def busy(self) -> bool:
        return self._running > 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self._running < self.capacity and not self._waiters:
            self._running += 1
            return
        if len(self._waiters) >= self.max_waiting:
            raise OverloadedError(
                f"{self.name} is overloaded: {len(self._waiters)} requests already waiting "
                f"(limit {self.max_waiting}); retry shortly"
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # We were handed the slot just as we were cancelled: pass it on.
                self._release()
            else:
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes directly; the running count stays
                return
        self._running -= 1
