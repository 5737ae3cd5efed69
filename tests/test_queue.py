import asyncio

import pytest

from candor.engine.queue import GenerationQueue
from candor.errors import OverloadedError


async def test_one_at_a_time_in_arrival_order():
    queue = GenerationQueue("m", max_waiting=10)
    order: list[int] = []
    running = 0

    async def job(i: int):
        nonlocal running
        async with queue.slot():
            running += 1
            assert running == 1
            order.append(i)
            await asyncio.sleep(0.001)
            running -= 1

    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(job(i)))
        await asyncio.sleep(0)  # arrive one after another
    await asyncio.gather(*tasks)
    assert order == list(range(6))
    assert queue.depth == 0 and not queue.busy


async def test_full_queue_is_refused_not_hung():
    queue = GenerationQueue("m", max_waiting=2)
    release = asyncio.Event()

    async def holder():
        async with queue.slot():
            await release.wait()

    async def waiter():
        async with queue.slot():
            pass

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(waiter()) for _ in range(2)]
    await asyncio.sleep(0)
    assert queue.depth == 2
    with pytest.raises(OverloadedError, match="2 requests already waiting"):
        async with queue.slot():
            pass
    release.set()
    await asyncio.gather(first, *waiting)
    assert queue.depth == 0


async def test_cancelled_waiter_leaves_the_queue():
    queue = GenerationQueue("m", max_waiting=5)
    release = asyncio.Event()

    async def holder():
        async with queue.slot():
            await release.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    doomed = asyncio.create_task(queue.slot().__aenter__())
    await asyncio.sleep(0)
    assert queue.depth == 1
    doomed.cancel()
    await asyncio.sleep(0)
    assert queue.depth == 0
    release.set()
    await first
    async with queue.slot():  # still usable
        assert queue.busy


async def test_capacity_lets_that_many_run_and_the_rest_wait_in_order():
    queue = GenerationQueue("m", max_waiting=10, capacity=3)
    running = peak = 0
    order: list[int] = []

    async def job(i: int):
        nonlocal running, peak
        async with queue.slot():
            running += 1
            peak = max(peak, running)
            order.append(i)
            await asyncio.sleep(0.01)
            running -= 1

    tasks = []
    for i in range(8):
        tasks.append(asyncio.create_task(job(i)))
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert queue.running == 3 and queue.depth == 5
    await asyncio.gather(*tasks)
    assert peak == 3 and order == list(range(8))
    assert queue.running == 0 and not queue.busy
