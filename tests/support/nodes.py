"""Real :class:`firmware.node.Node` objects run as tasks of the test's loop, all stopped at the end.

For tests that build a node's whole config themselves (keyboard folder, scripted discovery, ...),
where the ``start_node`` fixture's few settings are not enough.
"""

from __future__ import annotations

import asyncio
from typing import Any

from firmware.config import NodeConfig
from firmware.node import Node


class RunningNodes:
    def __init__(self) -> None:
        self._running: list[tuple[Node, asyncio.Task[None]]] = []

    def start(self, config: NodeConfig, **options: Any) -> Node:
        """A node with ``config`` (and Node's keyword options), running from now on."""
        node = Node(config, **options)
        self._running.append((node, asyncio.create_task(node.run())))
        return node

    async def stop_all(self) -> None:
        for node, _ in self._running:
            node.stop()
        for _, task in self._running:
            await asyncio.wait_for(task, 5)
