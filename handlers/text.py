"""Text normalisation for hotline orders: one spelling of the same words before anything reads them.

Citizens type full-width letters, traditional characters, zero-width spaces pasted from
messaging apps and spaces inside Chinese words ("井 盖"); the classifier and every keyword
match must see the same text for all of those.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache
from typing import Protocol


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


# Han ideographs (with extensions and compatibility forms), CJK punctuation, kana and bopomofo:
# a space between two of these separates nothing a reader would call two words.
_CJK = (
    "\u2e80-\u2fdf"  # radicals
    "\u3001-\u303f"  # CJK symbols and punctuation (not U+3000, the ideographic space)
    "\u3040-\u31bf"  # kana, bopomofo
    "\u3400-\u4dbf"  # extension A
    "\u4e00-\u9fff"  # unified ideographs
    "\uf900-\ufaff"  # compatibility ideographs
    "\U00020000-\U0003134f"  # extensions B-G
)
_SPACE_INSIDE_CJK = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_WHITESPACE_RUN = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _format_characters() -> re.Pattern[str]:
    """Every Unicode format character (Cf: zero-width space and joiners, BOM, soft hyphen,
    bidi marks), found once from the running Python's Unicode database."""
    ranges: list[str] = []
    start = previous = -2
    for point in range(sys.maxunicode + 1):
        if unicodedata.category(chr(point)) != "Cf":
            continue
        if point != previous + 1:
            if start >= 0:
                ranges.append(_char_range(start, previous))
            start = point
        previous = point
    ranges.append(_char_range(start, previous))
    return re.compile(f"[{''.join(ranges)}]+")


def _char_range(first: int, last: int) -> str:
    return re.escape(chr(first)) + (f"-{re.escape(chr(last))}" if last > first else "")


@lru_cache(maxsize=1)
def _traditional_characters() -> re.Pattern[str]:
    """The characters of the BMP that OpenCC's t2s changes on their own (about 4,200, found
    once by converting each, ~0.1 s), and any character beyond the BMP."""
    probe = [chr(point) for point in range(0x80, 0x10000) if not 0xD800 <= point < 0xE000]
    converted = _traditional_to_simplified().convert("\n".join(probe)).split("\n")
    if len(converted) != len(probe):  # a conversion joined lines: convert every text instead
        return re.compile(".", re.DOTALL)
    changed = "".join(
        re.escape(c) for c, simple in zip(probe, converted, strict=True) if c != simple
    )
    return re.compile(f"[{changed}\U00010000-\U0010ffff]")


@lru_cache(maxsize=1)
def _traditional_to_simplified() -> _Converter:
    """OpenCC's t2s converter, built on first use (it reads its dictionaries, ~10 ms)."""
    import opencc

    converter: _Converter = opencc.OpenCC("t2s")
    return converter


def normalise_text(text: str) -> str:
    """NFKC (full-width to half-width), format characters removed, spaces between CJK
    characters removed, other whitespace runs one space, traditional to simplified (OpenCC
    t2s), lower case."""
    text = unicodedata.normalize("NFKC", text)
    text = _format_characters().sub("", text)
    text = _SPACE_INSIDE_CJK.sub("", text)
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    # Only a text with a traditional character goes through OpenCC: its phrase table also
    # rewrites some simplified text ("打坏" -> "打坯", "一坏" -> "一坯"), and it costs more
    # than the search.
    if not text.isascii() and _traditional_characters().search(text):
        text = _traditional_to_simplified().convert(text)
    return text.lower()


def prepare_normaliser() -> None:
    """Build the tables normalise_text builds on first use (~0.3 s), so that the first
    order does not wait for them."""
    _format_characters()
    _traditional_characters()
