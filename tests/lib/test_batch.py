"""app/lib/batch.py: callers asking within one window share one answer call."""

from __future__ import annotations

import asyncio

import pytest

from app.lib.batch import Batcher


async def test_askers_within_the_window_share_one_call_and_each_gets_its_key() -> None:
    calls: list[list[str]] = []

    async def answer(keys: list[str]) -> dict[str, int]:
        calls.append(sorted(keys))
        return {k: len(k) for k in keys}

    batcher: Batcher[str, int] = Batcher(answer, window=0.01)
    got = await asyncio.gather(batcher.ask("a"), batcher.ask("bb"), batcher.ask("a"), batcher.ask("ccc"))
    assert got == [1, 2, 1, 3]
    assert calls == [["a", "bb", "ccc"]]  # a key asked twice is asked once
    assert await batcher.ask("dddd") == 4  # a later ask: a new batch
    assert batcher.calls == 2


async def test_a_full_batch_goes_at_once() -> None:
    calls: list[int] = []

    async def answer(keys: list[int]) -> dict[int, int]:
        calls.append(len(keys))
        return {k: k for k in keys}

    batcher: Batcher[int, int] = Batcher(answer, window=3600, max_keys=3)
    async with asyncio.timeout(2):  # never waits for the hour
        assert await asyncio.gather(*(batcher.ask(k) for k in range(3))) == [0, 1, 2]
    assert calls == [3]


async def test_a_failure_reaches_every_caller_of_its_batch_only() -> None:
    async def answer(keys: list[str]) -> dict[str, bool]:
        if "bad" in keys:
            raise RuntimeError("database gone")
        return {k: True for k in keys if k != "missing"}

    batcher: Batcher[str, bool] = Batcher(answer, window=0)
    results = await asyncio.gather(batcher.ask("x"), batcher.ask("bad"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await batcher.ask("y") is True
    with pytest.raises(KeyError):
        await batcher.ask("missing")


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    release = asyncio.Event()

    async def answer(keys: list[str]) -> dict[str, str]:
        await release.wait()
        return {k: k.upper() for k in keys}

    batcher: Batcher[str, str] = Batcher(answer, window=0)
    gone = asyncio.create_task(batcher.ask("a"))
    stays = asyncio.create_task(batcher.ask("b"))
    await asyncio.sleep(0.01)
    gone.cancel()
    release.set()
    assert await stays == "B"
    assert gone.cancelled()


async def test_drain_answers_what_is_asked_and_waits_for_running_batches() -> None:
    answered: list[list[int]] = []

    async def answer(keys: list[int]) -> dict[int, int]:
        await asyncio.sleep(0.01)
        answered.append(sorted(keys))
        return {k: -k for k in keys}

    batcher: Batcher[int, int] = Batcher(answer, window=3600)
    asks = [asyncio.create_task(batcher.ask(k)) for k in (1, 2)]
    await asyncio.sleep(0)
    await batcher.drain()  # no hour's wait, and nothing left running
    assert answered == [[1, 2]] and all(t.done() for t in asks)
    assert [t.result() for t in asks] == [-1, -2]
    await batcher.drain()  # nothing to do


async def test_told_keys_join_the_next_batch_without_waiting_and_a_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[list[str]] = []
    fail = False

    async def answer(keys: list[str]) -> dict[str, None]:
        calls.append(sorted(keys))
        if fail:
            raise RuntimeError("database gone")
        return dict.fromkeys(keys)

    batcher: Batcher[str, None] = Batcher(answer, window=0.01)
    batcher.tell("a")
    batcher.tell("b")
    batcher.tell("a")
    assert calls == []  # nothing ran yet: tell returned at once
    assert await batcher.ask("c") is None  # an asker shares the told keys' batch
    assert calls == [["a", "b", "c"]]
    fail = True
    batcher.tell("d")
    await batcher.drain()
    assert calls[-1] == ["d"]
    assert "a batch of 1 told keys failed: database gone" in caplog.text
