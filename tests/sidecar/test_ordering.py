"""Arrival order: turns under one key run in arrival order, keys are independent, early endings
wait for the turns ahead, and a key is forgotten once its turns have all ended."""

from __future__ import annotations

import asyncio

from sidecar.detection.ordering import ArrivalOrder, Turn


async def _record(turn: Turn, name: str, log: list[str], gate: asyncio.Event | None = None) -> None:
    try:
        await turn.wait()
        log.append(name)
        if gate is not None:
            await gate.wait()
    finally:
        turn.end()


async def test_turns_under_a_key_run_in_arrival_order() -> None:
    order: ArrivalOrder[str] = ArrivalOrder()
    log: list[str] = []
    gates = [asyncio.Event() for _ in range(3)]
    turns = [order.take("cam") for _ in range(3)]
    # Started in reverse: each still waits for the turns taken before it.
    tasks = [asyncio.create_task(_record(turns[i], str(i), log, gates[i])) for i in (2, 1, 0)]
    await asyncio.sleep(0.01)
    assert log == ["0"]
    gates[0].set()
    await asyncio.sleep(0.01)
    assert log == ["0", "1"]
    gates[1].set()
    gates[2].set()
    await asyncio.gather(*tasks)
    assert log == ["0", "1", "2"]
    assert len(order) == 0  # every turn ended: nothing kept


async def test_keys_are_independent() -> None:
    order: ArrivalOrder[str] = ArrivalOrder()
    log: list[str] = []
    held = asyncio.Event()
    a1 = asyncio.create_task(_record(order.take("a"), "a1", log, held))
    b1 = asyncio.create_task(_record(order.take("b"), "b1", log))
    a2 = asyncio.create_task(_record(order.take("a"), "a2", log))
    await b1
    assert log == ["a1", "b1"]  # b did not wait for a
    assert not a2.done()
    held.set()
    await asyncio.gather(a1, a2)
    assert log == ["a1", "b1", "a2"]


async def test_an_early_end_counts_only_after_the_turns_ahead() -> None:
    order: ArrivalOrder[str] = ArrivalOrder()
    first, failed, third = order.take("k"), order.take("k"), order.take("k")
    failed.end()  # e.g. a bad frame, done before the frame ahead of it
    waiter = asyncio.create_task(third.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()  # the first turn has not ended
    first.end()
    await asyncio.wait_for(waiter, 5)
    third.end()
    await asyncio.sleep(0)
    assert len(order) == 0


async def test_a_cancelled_waiter_cancels_nothing_else() -> None:
    order: ArrivalOrder[str] = ArrivalOrder()
    first, second, third = order.take("k"), order.take("k"), order.take("k")
    waiter = asyncio.create_task(second.wait())
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    second.end()
    first.end()
    await asyncio.wait_for(third.wait(), 5)  # the line still moves
