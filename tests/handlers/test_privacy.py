"""Personal numbers typed into free text are masked for every role that sees callers masked, and
left whole for duty officers: a table of how people write them, and properties over generated
texts (numbers inside Chinese text, next to punctuation, in full-width digits)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.access import Principal, Role, sees_personal_data
from handlers.privacy import mask_free_text, mask_free_text_in, shown_text

EVERY_ROLE = [
    Principal(subject="p", role=Role.PUBLISHER, scope="hotline", sources=("/12345/chengdu",)),
    Principal(subject="d", role=Role.DEPARTMENT, scope="510104001.water"),
    Principal(subject="o", role=Role.DUTY_OFFICER, scope="510100"),
    Principal(subject="s", role=Role.DISPATCHER, scope="510104"),
    Principal(subject="a", role=Role.AUDITOR),
]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("联系电话13800001003", "联系电话138****1003"),
        ("电话：138 0000 1003。", "电话：138 **** 1003。"),
        ("电话138-0000-1003，谢谢", "电话138-****-1003，谢谢"),
        ("+86 138 0000 1003", "+86 138 **** 1003"),
        ("＋８６１３８００００１００３", "＋８６１３８****１００３"),
        ("8613800001003", "86138****1003"),
        ("打１３８００００１００３找王师傅", "打１３８****１００３找王师傅"),
        ("138\u200b0000\u200b1003", "138\u200b****\u200b1003"),  # a zero-width space pasted in
        ("座机028-85551234", "座机028-****1234"),
        ("座机(028)8555 1234", "座机(028)**** 1234"),
        ("0832-1234567转", "083*-***4567转"),
        ("010-2000000", "010-****000"),  # ten digits: four of them hidden all the same
        ("身份证号510104199001011234", "身份证号5101**********1234"),
        ("身份证51010419900101123X。", "身份证5101**********123X。"),
        ("身份证51010419900101123ｘ", "身份证5101**********123ｘ"),
        ("卡号6222021234567890123", "卡号6222***********0123"),
        ("卡号 6222 0212 3456 7890", "卡号 6222 **** **** 7890"),
        ("13800001003 13900001004", "138****1003 139****1004"),  # two phones, not a card
        ("13800001003、13900001004", "138****1003、139****1004"),
    ],
)
def test_how_people_write_numbers_and_what_is_left_of_them(text: str, masked: str) -> None:
    assert mask_free_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "红星路口井盖不见了，很危险",
        "3号楼502室，2026年11月22日08:15发现",
        "水位0.62 m，超过阈值0.30 m",
        "WO-20261122-000123",
        "510104001001",  # a community's area code
        "510104001001001",  # a grid's
        "2026-11-22T08:15:00+08:00",
        "/12345/chengdu|WO-20261122-000123",
        "12345热线",
        "municipal|612|2081",
    ],
)
def test_what_is_not_a_personal_number_stays(text: str) -> None:
    assert mask_free_text(text) == text


def test_details_are_masked_inside_and_keep_their_shape() -> None:
    details = {
        "note": "已联系13800001003",
        "assignment": {"handling_area": "510104001", "reasons": [{"detail": "打13900001004"}]},
        "minutes": 30,
        "satisfied": True,
    }
    assert mask_free_text_in(details) == {
        "note": "已联系138****1003",
        "assignment": {"handling_area": "510104001", "reasons": [{"detail": "打139****1004"}]},
        "minutes": 30,
        "satisfied": True,
    }


# --- properties ----------------------------------------------------------------------------

FULL_WIDTH = {str(digit): chr(ord("０") + digit) for digit in range(10)} | {"X": "Ｘ", "+": "＋"}
WORDS = st.text(
    alphabet=st.sampled_from(
        list("市民反映路口井盖丢失很危险请尽快处理谢谢联系电话号身份证银行卡王师傅找打")
    ),
    min_size=1,
    max_size=12,
)
PUNCTUATION = st.sampled_from(
    [
        "",
        "，",
        "。",
        "：",
        ":",
        "（",
        "）",
        "(",
        ")",
        "、",
        "；",
        "/",
        "#",
        "【",
        "】",
        ".",
        ",",
        "“",
        "”",
    ]
)
GAPS = st.sampled_from(["", " ", "-", "\u3000", "－", "—", "\u00a0"])


@dataclass(frozen=True)
class Written:
    """A personal number as someone typed it: the national number's digits, and its text."""

    digits: str
    prefix: str
    text: str


def digits_of(draw: st.DrawFn, first: str, length: int) -> str:
    rest = draw(st.text(alphabet="0123456789", min_size=length - len(first), max_size=length))
    return (first + rest)[:length]


def grouped(draw: st.DrawFn, digits: str, groups: list[int]) -> str:
    """The digits in groups, with one kind of gap between them (or none)."""
    gap = draw(GAPS)
    parts, start = [], 0
    for size in groups:
        parts.append(digits[start : start + size])
        start += size
    if start < len(digits):
        parts.append(digits[start:])
    return gap.join(part for part in parts if part)


def full_width_maybe(draw: st.DrawFn, text: str) -> str:
    how = draw(st.sampled_from(["ascii", "full", "mixed"]))
    if how == "ascii":
        return text
    if how == "full":
        return "".join(FULL_WIDTH.get(ch, ch) for ch in text)
    flags = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(
        FULL_WIDTH.get(ch, ch) if flag else ch for ch, flag in zip(text, flags, strict=True)
    )


@st.composite
def mobile(draw: st.DrawFn) -> Written:
    digits = "1" + draw(st.sampled_from("3456789")) + digits_of(draw, "", 9)
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "+86-", "0086 ", "86"]))
    return Written(digits, prefix, grouped(draw, digits, [3, 4, 4]))


@st.composite
def landline(draw: st.DrawFn) -> Written:
    area = draw(st.sampled_from(["010", "021", "028", "0832", "0816", "0755"]))
    local = draw(st.sampled_from("23456789")) + digits_of(draw, "", draw(st.sampled_from([6, 7])))
    text = draw(st.sampled_from(["{a}-{l}", "{a}{l}", "({a}){l}", "{a} {l}", "（{a}）{l}"]))
    return Written(area + local, "", text.format(a=area, l=local))


@st.composite
def resident_id(draw: st.DrawFn) -> Written:
    region = draw(st.sampled_from("123456789")) + digits_of(draw, "", 5)
    born = f"{draw(st.integers(1930, 2024))}{draw(st.integers(1, 12)):02d}"
    born += f"{draw(st.integers(1, 28)):02d}"
    last = draw(st.sampled_from("0123456789Xx"))
    digits = region + born + digits_of(draw, "", 3) + last
    return Written(digits, "", grouped(draw, digits, [6, 8, 4]) if draw(st.booleans()) else digits)


@st.composite
def bank_card(draw: st.DrawFn) -> Written:
    length = draw(st.integers(16, 19))
    digits = draw(st.sampled_from("3456")) + digits_of(draw, "", length - 1)
    return Written(digits, "", grouped(draw, digits, [4, 4, 4, 4]))


NUMBERS = st.one_of(mobile(), landline(), resident_id(), bank_card())


@st.composite
def texts_with_numbers(draw: st.DrawFn) -> tuple[str, list[tuple[int, int, Written]]]:
    """Chinese text with personal numbers in it, each with where its national digits stand."""
    text = draw(WORDS) if draw(st.booleans()) else ""
    placed: list[tuple[int, int, Written]] = []
    for number in draw(st.lists(NUMBERS, min_size=1, max_size=4)):
        text += draw(PUNCTUATION) + full_width_maybe(draw, number.prefix)
        written = full_width_maybe(draw, number.text)
        placed.append((len(text), len(text) + len(written), number))
        text += written + draw(PUNCTUATION) + draw(WORDS)
    return text, placed


def ascii_digits(text: str) -> str:
    """The digits (and an ID's X) a text shows, in ASCII."""
    return "".join(
        str(int(ch)) if ch.isdecimal() else ch.upper()
        for ch in text
        if ch.isdecimal() or ch in "XxＸｘ"
    ).replace("Ｘ", "X")


@settings(max_examples=300, deadline=None)
@given(texts_with_numbers())
def test_no_personal_number_survives_for_a_masked_role(
    generated: tuple[str, list[tuple[int, int, Written]]],
) -> None:
    text, placed = generated
    for principal in EVERY_ROLE:
        shown = shown_text(text, sees_personal_data(principal))
        if sees_personal_data(principal):
            assert shown == text  # a duty officer calls back: the text as written
            continue
        assert len(shown) == len(text)
        for start, end, number in placed:
            left = ascii_digits(shown[start:end])
            hidden = shown[start:end].count("*")
            assert number.digits.upper() not in left, (text, shown)
            assert hidden >= 4, (text, shown)
        assert mask_free_text(shown) == shown  # nothing in it reads as a number any more


SHORT_NUMBERS = st.text(alphabet="0123456789", min_size=1, max_size=6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(WORDS, PUNCTUATION, SHORT_NUMBERS), min_size=1, max_size=6))
def test_short_numbers_in_text_stay_for_every_role(
    parts: list[tuple[str, str, str]],
) -> None:
    text = "".join(words + mark + number for words, mark, number in parts)
    for principal in EVERY_ROLE:
        assert shown_text(text, sees_personal_data(principal)) == text
