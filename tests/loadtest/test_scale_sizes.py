"""`cityloop bench --scale --sizes`: what it takes as a size."""

from __future__ import annotations

import pytest

from cityloop.loadtest.scale import parse_sizes


def test_sizes_are_read_as_positive_counts_and_anything_else_is_refused() -> None:
    assert parse_sizes("10_000, 1000000") == [10_000, 1_000_000]
    for wrong in ("10k", "", "0", "5,-1"):
        with pytest.raises(ValueError, match="positive numbers"):
            parse_sizes(wrong)
