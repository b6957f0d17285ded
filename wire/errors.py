"""One root for every error Buzzer Beater raises on purpose, so a command line catches one type.

Each error's ``str()`` is one line a host or maker can act on: what was wrong and what to do.
Anything else that escapes is a bug and shows its traceback.

The hierarchy::

    BuzzerError                          wire.errors: the root
    +-- ConfigError                      wire.errors: a config file or setting cannot be used
    |   +-- TLSConfigError               wire.errors: a certificate, key or CA file
    +-- StoreError                       hub.store: the data directory cannot be used
    |   +-- AlreadyRunning               hub.store: another hub holds it
    +-- TokenFileError                   hub.auth: the host token file cannot be read or made
    +-- ControlError                     hub.ctl: the hub refused or could not be reached
    +-- ScoreError                       hub.scores: an award that cannot be applied
    +-- NodeFatal                        firmware.link: retrying cannot help (version, address)
    +-- InputError                       firmware.inputs: no usable press source

A protocol problem in a received frame is not an exception: decoding returns a
:class:`wire.codec.ProtocolError` value that goes back to the sender as it is.
"""

from __future__ import annotations


class BuzzerError(Exception):
    """The root: an error whose message says what was wrong and what to do, in one line."""


class ConfigError(BuzzerError):
    """A config file or setting that cannot be used; the message says where and how to fix it."""


class TLSConfigError(ConfigError):
    """A certificate, key or CA file cannot be used; the message names the file and the reason."""
