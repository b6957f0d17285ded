"""The benchmark suite still runs end to end and writes a well-formed report.

A quick run (tiny sizes) of ``bench/run.py`` against a real hub and the baseline server: this
checks that the report is produced and complete, and that every press got its result, not how
fast anything was (this machine's timing is not a product property).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.flood import Soak
from bench.run import HEADER, SECTION, write_report
from hub import store

ROOT = Path(__file__).resolve().parents[2]


def table_rows(report: str, heading: str) -> list[list[str]]:
    """The data rows of the first table after ``heading``, as lists of cells."""
    after = report.split(heading, 1)[1]
    rows = []
    started = False
    for line in after.splitlines():
        if line.startswith("|"):
            started = True
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif started:
            break
    return rows[2:]  # without the head and the rule


def test_quick_run_writes_every_table_and_keeps_other_sections(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n## Someone else's section\n\nTheir table stays.\n")
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]

    text = report.read_text()
    assert text.startswith("# Benchmarks\n\n" + HEADER[0])
    assert "## Someone else's section\n\nTheir table stays." in text
    assert text.count(HEADER[0]) == text.count(SECTION[0]) == 1
    header = text.split(HEADER[0], 1)[1].split(HEADER[1], 1)[0]
    assert "Python 3." in header
    assert "websockets" in header

    targets = text.split("### Against the targets", 1)[1].split("###", 1)[0]
    for target in (
        "Burst of 20 plain clients, hub, saving",
        "Burst of 20 plain clients, hub, memory only",
        "CPU per press, saving",
        "Burst of 20 protocol nodes",
        "3 nodes, 0.2 s after they connected",
        "Idle with 5 plain clients",
    ):
        assert target in targets
    assert targets.count("met**") == 8  # each of the eight figures is judged
    assert "Not a target: the hub with its game bypassed (its network side alone)" in targets
    assert "Not a target: the floor" in targets

    latency = table_rows(text, "### 1. Decision latency")
    servers = {(row[0], row[1]) for row in latency}
    for nodes in ("1", "3"):
        assert ("hub, memory only", nodes) in servers
        assert ("classic server", nodes) in servers
    assert ("hub, saving", "3") in servers
    for row in latency:
        assert row[2] == "3"  # rounds
        assert row[8] == "0", row  # missing: every press got its result
        if row[0].startswith("hub"):
            # The firmware node presses first and wins, but not in every round on a starved
            # machine: with both cores kept busy its press once took 0.77 s to its result, and
            # another node's, made 0.5 s after it, won that round. How often is a timing figure
            # (the benchmark's), not a check of the report: the column is filled, and the
            # firmware won at least one round, whose winner's pattern was seen.
            assert 0 <= int(row[9]) < int(row[2]), row
            assert row[4] != "n/a"

    legs = table_rows(text, "leg by leg")
    hubs = {(server, nodes) for server, nodes in servers if server.startswith("hub")}
    assert {(row[0], row[1]) for row in legs} == hubs
    for row in legs:
        assert 1 <= int(row[2]) <= 3  # the rounds with the firmware's result
        counted, upload, told = (float(cell.split(" / ")[0]) for cell in row[3:6])
        assert counted >= 1.0  # the firmware counts a press once it stayed down 1 ms, never sooner
        # The hub's instants and the firmware's stamps on one clock: its press is read after it
        # was counted, and its result comes after the decision (within the quick plan's 10 s).
        assert 0 < upload < 10_000
        assert 0 < told < 10_000

    burst = table_rows(text, "### 2. Burst")
    assert [row[0] for row in burst] == ["hub, memory only", "classic server", "hub, saving"]
    for row in burst:
        assert row[1] == "20"
        assert row[8] == "0", row
        assert float(row[6]) > 0  # a peak RSS was read

    plain = table_rows(text, "### 2b. Burst")
    assert [row[0] for row in plain] == [
        "hub, memory only",
        "classic server",
        "hub, saving",
        "hub, its game bypassed",
        "floor: the protocol core alone",
    ]
    for row in plain:
        assert row[1] == "20"
        assert row[8] == "0", row  # every plain client got its answer

    idle = table_rows(text, "### 3. Idle cost")
    assert [(row[0], row[1]) for row in idle] == [
        ("hub, protocol nodes, converging", "5"),
        ("hub, protocol nodes, backing off", "5"),
        ("hub, protocol nodes", "5"),
        ("hub, plain clients", "5"),
        ("classic server, plain clients", "5"),
    ]

    fairness = text.split("### 4. Fairness sweep", 1)[1].split("###", 1)[0]
    assert "| skew ms | gap ms |" in fairness
    assert "failed" not in fairness


def test_report_update_replaces_only_its_own_blocks(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n## Store\n\nkept\n")
    header = f"{HEADER[0]}\nrun one\n{HEADER[1]}"
    body = f"{SECTION[0]}\n## Ours\nfirst\n{SECTION[1]}"
    write_report(report, header, body)
    write_report(report, header.replace("one", "two"), body.replace("first", "second"))
    text = report.read_text()
    assert text == (
        f"# Benchmarks\n\n{HEADER[0]}\nrun two\n{HEADER[1]}\n\n## Store\n\nkept\n\n"
        f"{SECTION[0]}\n## Ours\nsecond\n{SECTION[1]}\n"
    )


def _outcome(round_: int, press_id: str, at_ns: int, rank: int, flags: str) -> tuple[object, ...]:
    """A saved press and its outcome, as the hub's journal writes it (store.OUTCOME_UPSERT)."""
    player = press_id.split("-")[0]
    wall = 1_700_000_000_000_000_000
    return (store.CURRENT_GAME, round_, player, press_id, at_ns, at_ns + 500_000, at_ns, 100_000,
            1, rank, 1_000_000, 0, flags, None, wall)  # fmt: skip


def test_flood_soak_reads_late_presses_back_from_the_saved_rounds(tmp_path: Path) -> None:
    """The soak's fairness column counts, from a real results database: presses flagged late,
    and of those, the ones stamped before their round's first place (a wrong winner)."""
    opened = store.Store(tmp_path)
    opened.open()
    assert opened._db is not None
    store.insert_rows(
        opened._db,
        store.OUTCOME_UPSERT,
        [
            _outcome(1, "a-1", 5_000_000, 1, ""),
            _outcome(1, "b-1", 4_000_000, 2, "late"),  # stamped first, heard too late
            _outcome(1, "c-1", 6_000_000, 3, "late,tie"),  # late, yet after the winner
            _outcome(2, "b-2", 9_000_000, 1, ""),
            _outcome(2, "a-2", 9_500_000, 2, "tie"),
        ],
    )
    opened.close()
    soak = Soak("presses")
    soak.count_late(tmp_path)
    assert (soak.ranked, soak.late, soak.overturned) == (5, 2, 1)
