"""Masking of personal data (脱敏) for readers who do not need it: callers' names and phones,
and the personal numbers people type into free text."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from cityloop.contracts import CallerContact


def mask_name(name: str) -> str:
    """Keep the family name (the first character), hide the rest: 张三丰 → 张**."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits: 13812345678 → 138****5678."""
    digits = [ch for ch in phone if ch.isdigit()]
    if len(digits) < 8:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 7) + "".join(digits[-4:])


def mask_caller(caller: CallerContact | None) -> CallerContact | None:
    if caller is None:
        return None
    return CallerContact(
        name=mask_name(caller.name) if caller.name else None,
        phone=mask_phone(caller.phone) if caller.phone else None,
    )


# --- numbers people type into free text ----------------------------------------------------

_GAP = r"[ \-]{0,3}"
"""What may stand between two digits of one number: spaces and dashes (138 1234-5678), after
the text's look-alikes are read as them (`_Shadow`)."""

_NUMBERS = re.compile(
    rf"""(?<![0-9])(?:
        (?P<id>[1-9](?:{_GAP}[0-9]){{16}}{_GAP}[0-9Xx])(?![0-9])
      | (?:(?:\+|00)?86{_GAP})?(?P<mobile>1[3-9](?:{_GAP}[0-9]){{9}})(?![0-9])
      | (?P<landline>\(?0[1-9][0-9]{{1,2}}\)?{_GAP}[2-9](?:{_GAP}[0-9]){{6,7}})(?![0-9])
      | (?P<card>[0-9](?:{_GAP}[0-9]){{15,}})(?![0-9])
    )""",
    re.VERBOSE,
)
"""The personal numbers of mainland China as people write them, in a text of ASCII digits and
separators: an 18-digit resident ID (its last character a digit or X), a mobile number (1[3-9]
and nine more digits, after +86, 0086 or 86 or not), a landline with its area code (010, 02x,
0xxx; 7 or 8 digits), a bank card (16 to 19 digits; any longer run of digits is hidden as
one). Where two could start at one place the first that fits is taken, so two phones with a
space between are two phones, not a card. A number is never a part of a longer run of digits:
510104001001 is an area code."""

_KEPT = {"id": (4, 4), "card": (4, 4), "mobile": (3, 4), "landline": (3, 4)}
"""How many digits of each kind of number stay, at its start and at its end: enough to
recognise it (138****1003, 5101**********1234), not enough to call or use it."""
_HIDDEN_AT_LEAST = 4
"""Digits hidden of any number, whatever is kept: a 10-digit landline keeps 3 at its end."""

_LOOK_ALIKES = {
    "＋": "+",
    "（": "(",
    "）": ")",
    "Ｘ": "X",
    "ｘ": "x",
    **dict.fromkeys("‐‑‒–—―−－﹣﹘", "-"),
}


class _Shadow(dict[int, int]):
    """`str.translate`'s table from a text to its shadow: every decimal digit of any script
    (full-width ０-９ among them) as its ASCII digit, dashes, spaces and format characters
    (a zero-width space pasted inside a number) as '-' and ' ', full-width + ( ) X as ASCII;
    every other character as itself. One character for one, so a number found in the shadow
    is at the same place in the text. Filled as characters are met."""

    def __missing__(self, code: int) -> int:
        character = chr(code)
        if character in _LOOK_ALIKES:
            shadow = _LOOK_ALIKES[character]
        elif character.isdecimal():
            shadow = str(unicodedata.decimal(character))
        elif unicodedata.category(character) in ("Zs", "Cf"):
            shadow = " "
        else:
            shadow = character
        self[code] = ord(shadow)
        return self[code]


_SHADOW = _Shadow()
_ANY_DIGIT = re.compile(r"\d")


def mask_free_text(text: str) -> str:
    """The text with every personal number in it masked where it stands, its other characters
    as they were: '电话１３８-1234-1003' → '电话１３８-****-1003'. A pure function of the text; a
    text without digits is returned as it is."""
    if not _ANY_DIGIT.search(text):
        return text
    shadow = text if text.isascii() else text.translate(_SHADOW)
    masked: list[str] | None = None
    for found in _NUMBERS.finditer(shadow):
        kind = found.lastgroup
        if kind is None:
            continue
        start, end = found.span(kind)
        digits = [i for i in range(start, end) if shadow[i].isdigit() or shadow[i] in "Xx"]
        head, tail = _KEPT[kind]
        tail = min(tail, len(digits) - head - _HIDDEN_AT_LEAST)
        if masked is None:
            masked = list(text)
        for index in digits[head : len(digits) - tail]:
            masked[index] = "*"
    return text if masked is None else "".join(masked)


def mask_free_text_in(value: Any) -> Any:
    """`mask_free_text` of every text inside a JSON value (a timeline entry's details)."""
    if isinstance(value, str):
        return mask_free_text(value)
    if isinstance(value, dict):
        return {key: mask_free_text_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_free_text_in(item) for item in value]
    return value


def shown_text(text: str, sees_personal_data: bool) -> str:
    """A free text as a reader sees it: whole for those who see callers' personal data (duty
    officers, `handlers.access.sees_personal_data`), its personal numbers masked for others."""
    return text if sees_personal_data else mask_free_text(text)
