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


def _groups_by_definition(pending: list[PressIn]) -> list[list[PressIn]]:
    """The tie groups as the rule reads: a press joins a group if tied with every member."""
    groups: list[list[PressIn]] = []
    for one in pending:
        tied = groups and all(
            abs(m.at_ns - one.at_ns) < m.uncertainty_ns + one.uncertainty_ns for m in groups[-1]
        )
        if tied:
            groups[-1].append(one)
        else:
            groups.append([one])
    return groups


def test_tie_groups_in_one_pass_match_the_rule() -> None:
    import random

    from hub.round import RoundEngine, Rules, TieRule

    rng = random.Random(5)
    engine = RoundEngine(Rules(tie_rule=TieRule.TIMESTAMP))
    for _ in range(300):
        pending = sorted(
            (
                PressIn(f"p{i}", f"x{i}", rng.randrange(0, 50), i, rng.choice([0, 1, 3, 8, 20]))
                for i in range(rng.randrange(1, 25))
            ),
            key=lambda p: p.at_ns,
        )
        expected = [p for group in _groups_by_definition(pending) for p in group]
        got = [p for p, _ in engine._break_ties(pending)]
        assert got == expected
        # the group boundaries too: with the arrival rule each group is re-sorted by arrival
        arrival = RoundEngine(Rules(tie_rule=TieRule.ARRIVAL))
        by_arrival = [
            p for g in _groups_by_definition(pending) for p in sorted(g, key=lambda p: p.arrival_ns)
        ]
        assert [p for p, _ in arrival._break_ties(pending)] == by_arrival
