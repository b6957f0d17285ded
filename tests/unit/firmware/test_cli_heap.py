"""A station freezes what it holds once started out of later full garbage collections."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

from firmware.cli import freeze_start
from firmware.config import GpioSection, NodeConfig, NodeSection
from firmware.node import Node
from tests.support.garbage import unreachable_cycle


def test_what_a_station_holds_is_frozen_after_one_collection() -> None:
    before = gc.get_freeze_count()
    garbage = unreachable_cycle()
    try:
        freeze_start()
        assert garbage() is None
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


async def test_the_station_calls_back_once_its_inputs_are_open_before_it_connects(
    mock_pins: Any,
) -> None:
    with socket.socket() as taken:  # a loopback port nothing listens on: no hub yet
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
    opened = asyncio.Event()
    seen: list[int] = []

    def on_open() -> None:
        seen.append(len(node.sources))
        opened.set()

    config = NodeConfig(
        node=NodeSection(hub=f"ws://127.0.0.1:{port}", id="n1", name="n1", inputs=["gpio"]),
        gpio=GpioSection(),
    )
    node = Node(config, console=lambda line: None, on_open=on_open)
    task = asyncio.create_task(node.run())
    try:
        await asyncio.wait_for(opened.wait(), 10)
        assert seen == [1]  # the button's source was open when it was called, and only once
    finally:
        node.stop()
        await asyncio.wait_for(task, 10)
