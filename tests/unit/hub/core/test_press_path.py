"""The press path does each thing once: one frame encoding per audience, one journal row per
press built without reflection, the same bytes as before."""

from __future__ import annotations

import dataclasses
import json

from hub.config import HubConfig, RoundSection
from hub.core.outputs import Broadcast, Send
from hub.journal import Call
from hub.round import Arm, Press, PressIn, Wrong
from tests.support.simulation import MS, Net, S, host, node, press
from wire.enums import ReboundMode


def test_a_press_entry_is_the_same_json_as_a_reflected_one() -> None:
    step = Press(PressIn("desk-1", "p-1", 5, 7, 300, raw_ns=-9, synced=False), 42)
    reflected = {"press": dataclasses.asdict(step.press), "horizon_ns": 42}
    assert Call(step, 7).payload() == json.dumps(reflected, separators=(",", ":"))
    for other in (Arm(), Arm(5), Wrong(ReboundMode.NEXT)):
        fields = {f.name: getattr(other, f.name) for f in dataclasses.fields(other)}
        assert Call(other, 1).payload() == json.dumps(fields, separators=(",", ":"))
        assert Call.load(other.KIND, 1, Call(other, 1).payload()).input == other


def test_a_decision_reaches_every_node_in_one_broadcast() -> None:
    net = Net.hub(HubConfig(round=RoundSection(hostless=False, release_lead_ms=0)))
    console = host(net)
    nodes = [node(net, f"n{i:03d}") for i in range(100)]
    net.run_for(S)
    console.send({"type": "arm"})
    net.run_for(MS)
    press(nodes[0], net.now, "w-1")
    outputs: list[object] = []
    carry = net.carry

    def spy(out: list[object]) -> None:
        outputs.extend(out)
        carry(out)  # type: ignore[arg-type]

    net.carry = spy  # type: ignore[method-assign]
    net.run_for(20 * MS)
    rounds = [o for o in outputs if isinstance(o, Send | Broadcast) and '"type":"round"' in o.frame]
    assert len(rounds) == 1
    assert isinstance(rounds[0], Broadcast)
    assert len(rounds[0].links) == 100
    assert all(n.last("round")["state"] == "decided" for n in nodes)
