"""normalise_text: one spelling of the same words, whatever keyboard or app the citizen used."""

from __future__ import annotations

import pytest

from handlers.text import normalise_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("這個井蓋壞了，請儘快處理", "这个井盖坏了,请尽快处理", id="traditional"),
        pytest.param("臺灣 頭髮 乾燥", "台湾头发干燥", id="traditional-phrases"),
        pytest.param("ＡＢＣ小区１２３号", "abc小区123号", id="full-width-letters-digits"),
        pytest.param("井\u200b盖", "井盖", id="zero-width-space"),
        pytest.param("\ufeff路灯\u200d不亮\u00ad", "路灯不亮", id="bom-joiner-soft-hyphen"),
        pytest.param("井 盖", "井盖", id="space-inside-word"),
        pytest.param("井\u3000\t 盖没了", "井盖没了", id="ideographic-space-and-tab"),
        pytest.param("Street  Light\nis OUT", "street light is out", id="english-kept-spaced"),
        pytest.param("3 号楼 A 座", "3 号楼 a 座", id="space-beside-latin-kept"),
        pytest.param("  路灯不亮  ", "路灯不亮", id="stripped"),
        pytest.param("", "", id="empty"),
        pytest.param("Ｉｎｄｕｓｔｒｉａｌ Park", "industrial park", id="full-width-english"),
        # OpenCC's phrase table would make these 坯; a simplified text is left as it is.
        pytest.param(
            "电梯一坏就下不了楼,玉米打坏了", "电梯一坏就下不了楼,玉米打坏了", id="simplified-kept"
        ),
        pytest.param("路燈壞了", "路灯坏了", id="traditional-broken"),
        pytest.param("𠮷野家 好吃", "𠮷野家好吃", id="beyond-the-bmp"),
    ],
)
def test_normalise_text(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


def test_normalised_text_is_a_fixed_point() -> None:
    once = normalise_text("這個 井蓋\u200b ＡＢＣ  壞了")
    assert normalise_text(once) == once
