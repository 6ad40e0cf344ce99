"""proplatform.channel_sends: channel-layer sends from sync code share one loop per process."""

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from proplatform import channel_sends


class _Layer:
    """Stands in for the Redis layer: records the loop each send ran on."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.loops.append(asyncio.get_running_loop())
        if message.get("fail"):
            raise ConnectionError("redis went away")


def test_sends_from_sync_code_run_on_one_loop_that_stays_open():
    layer = _Layer()
    for _ in range(3):
        channel_sends.run(layer, lambda: layer.group_send("g", {}))
    assert len({id(loop) for loop in layer.loops}) == 1
    assert layer.loops[0] is channel_sends._process_loop()
    assert layer.loops[0].is_running()


def test_a_failed_send_raises_in_the_caller_and_the_loop_goes_on():
    layer = _Layer()
    with pytest.raises(ConnectionError):
        channel_sends.run(layer, lambda: layer.group_send("g", {"fail": True}))
    channel_sends.run(layer, lambda: layer.group_send("g", {}))
    assert len(layer.loops) == 2


def test_a_forked_process_starts_its_own_loop(monkeypatch):
    first = channel_sends._process_loop()
    monkeypatch.setattr(channel_sends, "_loop_pid", -1)  # as the parent's, seen from a child
    second = channel_sends._process_loop()
    assert second is not first and second.is_running()


def test_the_in_memory_layer_keeps_async_to_sync():
    # Its queues belong to the loop of the server that runs the consumers (the embedded shape).
    layer = InMemoryChannelLayer()

    async def round_trip() -> dict:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "x"})
        return await layer.receive(channel)

    assert channel_sends.run(layer, round_trip) == {"type": "x"}


def test_code_already_on_a_loop_is_refused_rather_than_blocked():
    layer = _Layer()

    async def from_async_code() -> None:
        channel_sends.run(layer, lambda: layer.group_send("g", {}))

    with pytest.raises(RuntimeError, match="AsyncToSync"):
        asyncio.run(from_async_code())
