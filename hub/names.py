"""Player names as people will read them: normalised, without towers of accents, and never
passing for another player present.

Pure text rules. A name arrives as any printable Unicode (the protocol allows 40 characters):
the same letters can come composed or decomposed (NFC makes them one form, so equal names
compare equal), a letter can carry dozens of combining marks that paint over the lines around
it, and a Greek capital alpha or a Cyrillic small o looks exactly like a Latin letter. The
skeleton below follows the idea of Unicode's confusable detection (UTS #39): fold each name to a
form in which look-alikes coincide, and treat two names with the same skeleton as the same
name. The table covers the letters that pass for Latin ones in common fonts; it is not the full
Unicode data.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

#: Combining marks kept on one base character (Vietnamese needs two; more is decoration).
MAX_MARKS = 2

#: Letters from other scripts (and digits) that look like a Latin letter, to that letter:
#: Greek, then Cyrillic, then Latin look-alikes and digits (escaped: the source stays readable).
_LOOKALIKES = str.maketrans(
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4"
    "\u03a5\u03a7\u03b1\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u03f2"
    "\u0410\u0412\u0421\u0415\u041d\u0406\u0408\u041a\u041c\u041e\u0420\u0405"
    "\u0422\u0425\u0423\u0430\u0432\u0441\u0435\u04bb\u0456\u0458\u043a\u043c"
    "\u043e\u0440\u0455\u0442\u0443\u0445\u0501\u051b\u051d\u04cf\u0131\u0269"
    "\u026101i5",
    "abezhlkmnoptyxalkvoptuxcabcehljkmopstxyabcehljkmopstyxdqwlllgolls",
)


def clean(name: str) -> str:
    """NFC, at most :data:`MAX_MARKS` combining marks per character, no outer spaces."""
    kept: list[str] = []
    marks = 0
    for char in unicodedata.normalize("NFD", name):
        if unicodedata.combining(char):
            marks += 1
            if marks > MAX_MARKS:
                continue
        else:
            marks = 0
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept)).strip()


@functools.lru_cache(maxsize=4096)
def skeleton(name: str) -> str:
    """A form in which names that look alike are equal: compatibility-folded, case-folded,
    without marks, spaces or punctuation, look-alike letters mapped to Latin ones.

    Remembered per name: every join compares the new name with every player online, and a
    thousand nodes joining together would otherwise fold a million names."""
    folded = unicodedata.normalize("NFKD", name).casefold()
    letters = (c for c in folded if not unicodedata.combining(c) and c.isalnum())
    return "".join(letters).translate(_LOOKALIKES)


def distinct(name: str, others: Iterable[str], limit: int) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... so that it passes for none of ``others``
    (names of the players present); at most ``limit`` characters."""
    taken = {skeleton(other) for other in others}
    if skeleton(name) not in taken:
        return name
    for number in range(2, 10_000):
        suffix = f" ({number})"
        candidate = name[: limit - len(suffix)].rstrip() + suffix
        if skeleton(candidate) not in taken:
            return candidate
    return name  # not reached: fewer than 10,000 players are present
