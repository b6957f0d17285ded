"""The one way between the hub and its disk: open the store, restore from it, save what the core
says to save, and close it.

The core only says what to keep (:data:`hub.core.outputs.Record`); the recorder owns the
:class:`~hub.store.Store`'s whole life. With no data directory (``--memory-only``) it keeps
nothing, and a write's completion runs at once: the press is recorded in memory, which is all
such a run can promise, and nodes must not re-send forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import assert_never

from hub.central import CentralLink
from hub.config import HubConfig, TournamentSection
from hub.core.machine import Restored
from hub.core.outputs import JournalStep, Record, RosterEntry
from hub.core.roster import Known
from hub.journal import RecordingEngine
from hub.round import RoundEngine
from hub.store import Store, csv_text, rows_from_engine
from wire.enums import InputKind
from wire.messages import CentralView, MatchReport, StorageView

log = logging.getLogger("hub.store")

MEMORY_ONLY = StorageView(saving=False, path=None, message="memory-only: results are not saved")


class Recorder:
    def __init__(self, store: Store | None) -> None:
        self.store = store

    @classmethod
    def open(cls, data_dir: Path | None) -> Recorder:
        """Lock and open the data directory (None: keep nothing). Raises
        :class:`~hub.store.AlreadyRunning` when another hub has it; any other trouble leaves
        the store in memory-only mode with a status that says why."""
        if data_dir is None:
            return cls(None)
        store = Store(data_dir)
        store.open()
        return cls(store)

    @property
    def status(self) -> StorageView:
        return MEMORY_ONLY if self.store is None else self.store.status.view()

    def restore(self, config: HubConfig, now: int, wall_ns: int) -> Restored:
        """The engine (its game, scores included) and roster exactly as the last run left them,
        and the last match's number and result."""
        rules = config.game.apply(config.round.rules())
        store = self.store
        if store is None:
            return Restored(RecordingEngine(rules), storage=self.status)
        try:
            engine, _ = store.restore(rules, now, wall_ns)
        except Exception as exc:  # the hub starts in every storage state, ranking in memory
            store.give_up(f"cannot restore from {store.path} ({type(exc).__name__}: {exc})")
            return Restored(RecordingEngine(rules), storage=self.status)
        players = [
            Known(player_id, name, _input_kind(kind), team)
            for player_id, name, kind, team in store.players()
        ]
        last_match, last_result = store.last_match()
        return Restored(engine, players, self.status, last_match, last_result)

    def central_link(
        self, settings: TournamentSection, on_status: Callable[[CentralView, int], None]
    ) -> CentralLink | None:
        """A hub in a tournament: from now on every change of a match also goes to the outbox,
        and this link sends it on. None when nothing is saved (there is no outbox to send)."""
        store = self.store
        if store is None or not store.saving:
            return None
        store.outbox = (settings.id, settings.room)
        link = CentralLink(settings, store.path, on_status)
        store.on_outbox = link.wake
        return link

    def start(
        self, loop: asyncio.AbstractEventLoop, on_status: Callable[[StorageView], None]
    ) -> None:
        """Start writing; a change of status (saving stopped, and why) is reported on ``loop``."""
        if self.store is not None:
            self.store.on_status = lambda status: on_status(status.view())
            self.store.start(loop)

    def write(
        self,
        record: Record,
        done: Callable[[], None] | None,
        lost: Callable[[], None] | None = None,
    ) -> None:
        """Queue one record; ``done`` runs on the loop once it is committed, ``lost`` instead
        if the store refuses it on its own (it is then never written)."""
        store = self.store
        if store is None:
            if done is not None:
                done()
            return
        match record:
            case JournalStep(calls=calls, events=events, engine=engine):
                store.record(calls, events, engine, done, lost)
            case RosterEntry(player=player, name=name, input=kind, team=team):
                store.save_player(player, name, kind, team)
                if done is not None:
                    done()
            case _:
                assert_never(record)

    def results_csv(self, engine: RoundEngine, names: Mapping[str, str]) -> str:
        """Every press as CSV: from the database, or from memory when nothing is saved."""
        if self.store is not None:
            text = self.store.results_csv()
            if text is not None:
                return text
        return csv_text(rows_from_engine(engine, names))

    def match_report(self, number: int | None) -> MatchReport | None:
        """A match's saved result (None: the latest); None when nothing is saved."""
        return None if self.store is None else self.store.match_report(number)

    def after_queued(self, done: Callable[[], None]) -> None:
        """``done`` runs on the loop once every record written so far is committed (at once,
        in memory)."""
        if self.store is None:
            done()
        else:
            self.store.after_queued(done)

    def close(self) -> None:
        """Finish every queued write, then close the database and release the lock."""
        if self.store is not None:
            self.store.close()


def _input_kind(saved: str | None) -> InputKind:
    try:
        return InputKind(saved or InputKind.GPIO)
    except ValueError:  # a row from a newer hub: shown as a button until the station says
        return InputKind.GPIO
