"""Every closed set of names on the wire: roles, input kinds, round phases, flags, codes.

Both sides compare these members, never bare strings, so a typo is a name error at import time
rather than a silent mismatch at an event. String enums encode as their value in JSON, so a frame
holds exactly the text docs/protocol.md lists.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Role(StrEnum):
    NODE = "node"
    HOST = "host"
    VIEWER = "viewer"


class InputKind(StrEnum):
    GPIO = "gpio"
    KEYBOARD = "keyboard"
    TERMINAL = "terminal"
    BROWSER = "browser"
    TEXT = "text"  # a plain-text tutorial client; reserved, never sent by a JSON client


class Phase(StrEnum):
    """Where the round is: see docs/protocol.md section 8."""

    IDLE = "idle"
    ARMED = "armed"
    DECIDED = "decided"
    CLOSED = "closed"


class Flag(StrEnum):
    """What a press's result says besides its rank."""

    EARLY = "early"  # pressed before the release instant: locked out
    LOCKED = "locked"  # pressed while locked out by an earlier early press
    LATE = "late"  # arrived after the announcement although stamped before a ranked press
    TIE = "tie"  # closer to a neighbour than their combined timestamp uncertainty
    REPEAT = "repeat"  # a second press by a player who already has a counted press
    CLOSED = "closed"  # the round no longer takes presses
    STALE = "stale"  # stamped before the current round began: belongs to an earlier round
    UNSYNCED = "unsynced"  # the node's clock was not synchronised: ranked by arrival
    CLAMPED = "clamped"  # claimed an instant earlier than its link can explain: moved to that


class ReboundMode(StrEnum):
    """What a wrong answer leads to."""

    NEXT = "next"  # the next eligible player in the ranking is offered the answer
    REARM = "rearm"  # the question is armed again; whoever answered (and their team) stays out


class TimerKind(StrEnum):
    BUZZ = "buzz"  # no counted press within the window after the release: the round closes
    ANSWER = "answer"  # the player with the floor has this long to answer
    BONUS = "bonus"  # the team has this long to answer a bonus part once it was read


class AnswerKind(StrEnum):
    """What a ruled answer was, in the words scoresheets use."""

    POWER = "power"  # right, before the power mark
    RIGHT = "right"
    NEG = "neg"  # wrong, and it cost points (an interruption, or a Jeopardy clue's value)
    WRONG = "wrong"  # wrong, for no penalty


class MatchStatus(StrEnum):
    PLAYING = "playing"
    ENDED = "ended"


class TimerStage(StrEnum):
    WARNING = "warning"
    EXPIRED = "expired"


class ErrorCode(StrEnum):
    """The ``code`` of ``error`` and ``warning`` frames. Clients must accept codes they do not
    know: a newer hub may add some, and the message says what to do."""

    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_object"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    BAD_FIELD = "bad_field"
    VERSION_MISMATCH = "version_mismatch"
    HELLO_REQUIRED = "hello_required"
    ALREADY_GREETED = "already_greeted"
    NOT_ALLOWED = "not_allowed"
    BAD_TOKEN = "bad_token"
    BINARY_FRAME = "binary_frame"
    UNKNOWN_SYNC = "unknown_sync"
    UNKNOWN_FIELD = "unknown_field"  # a warning: the message was used, the field ignored
    NOTHING_TO_RULE = "nothing_to_rule"  # right/wrong while nobody has the floor
    BAD_TIME = "bad_time"  # a press whose hub time cannot be stored: not recorded, not acked
    TOO_MANY_IDS = "too_many_ids"  # new station ids from one address beyond its budget
    NOT_NOW = (
        "not_now"  # a game command that does not fit the game as it stands; the message says why
    )
    UNKNOWN_NAME = "unknown_name"  # a player or team nobody knows; the message lists the known ones


class CloseCode(IntEnum):
    """WebSocket close codes the hub uses; 4000-4999 are reserved for applications by RFC 6455."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the hub is shutting down; reconnect
    TOO_BIG = 1009  # sent by the websockets library itself
    INTERNAL_ERROR = 1011
    BAD_HELLO = 4400  # hello invalid in a way that cannot be retried as is
    BAD_TOKEN = 4401  # token missing or wrong for the requested role
    INPUT_REFUSED = 4403  # the host is not taking players of this input kind (browsers)
    TOO_SLOW = 4408  # the client stopped reading; the hub will not buffer for it
    REPLACED = 4409  # another connection took over this node id
    VERSION_MISMATCH = 4426  # protocol version not supported
    RATE_LIMITED = 4429  # more frames than any real client sends; back off, reconnect
