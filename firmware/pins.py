"""Opening a GPIO device (button, LED, buzzer) so that every way it can fail is one line.

gpiozero and its pin libraries fail in ways that tell a maker little: a pin another program holds
is a bare ``lgpio.error('GPIO busy')`` with a traceback; a missing or broken pin library is
"Unable to load any default pin factory!", the real reason (``No module named 'lgpio'``, a
permission on ``/dev/gpiochip0``) having gone by as a warning. :func:`open_device` collects those
warnings and turns any failure of the pin stack into :class:`PinSetupError` with the cause and
what to do.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

from wire.errors import BuzzerError

T = TypeVar("T")


class PinSetupError(BuzzerError):
    """A pin could not be used; the message names it, the cause, and what to do."""


def pin_name(value: str) -> str | int:
    """gpiozero takes "GPIO17", "BOARD11" or a Broadcom number; a bare "17" means the number."""
    return int(value) if value.isdigit() else value


def open_device(what: str, pin: str, build: Callable[[], T]) -> T:
    """``build()`` the gpiozero device for ``what`` on ``pin``; PinSetupError if it fails."""
    from gpiozero.exc import PinFactoryFallback

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PinFactoryFallback)
        try:
            return build()
        # Any failure of the pin stack: gpiozero's own errors, lgpio.error, OSError from the
        # chip device, ImportError of a pin library. Each becomes one line; nothing is retried.
        except Exception as exc:
            fallbacks = [
                str(w.message).removeprefix("Falling back from ")
                for w in caught
                if issubclass(w.category, PinFactoryFallback)
            ]
            raise PinSetupError(describe(what, pin, exc, fallbacks)) from None


def describe(what: str, pin: str, exc: BaseException, fallbacks: list[str]) -> str:
    """The line for a pin that failed: what, where, why, and what to do."""
    from gpiozero.exc import BadPinFactory, GPIOPinInUse, PinInvalidPin

    text = str(exc).strip().strip("'\"") or type(exc).__name__
    where = f"the {what} on pin {pin}"
    if isinstance(exc, BadPinFactory):
        tried = "; ".join(fallbacks) if fallbacks else text
        return (
            f"cannot use {where}: no GPIO library works here ({tried}); on a Raspberry Pi "
            "install the node with systemd/install.sh (it brings lgpio), elsewhere use "
            "--input keyboard or terminal (or GPIOZERO_PIN_FACTORY=mock to try)"
        )
    if "busy" in text.lower():
        return (
            f"cannot use {where}: the pin is busy, held by another program (another "
            "buzzer-node, or a service using the same pin); stop it, or set another pin"
        )
    if isinstance(exc, GPIOPinInUse):
        return f"cannot use {where}: this station already uses that pin for something else"
    if isinstance(exc, PinInvalidPin):
        return f"cannot use {where}: {text}; pins look like GPIO17, BOARD11 or 17"
    if isinstance(exc, PermissionError):
        return (
            f"cannot use {where}: permission denied ({exc.filename or text}); the node's user "
            "must be in the gpio group"
        )
    return f"cannot use {where}: {text}"
