"""Summarise a py-spy raw (collapsed-stack) profile: inclusive share of the functions that
matter for the worker's hot path, and the top self-time frames."""

from __future__ import annotations

import sys
from collections import Counter


def summarise(path: str, top: int = 25) -> None:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            total += count
            frames = stack.split(";")
            for frame in set(frames):
                inclusive[frame] += count
            own[frames[-1]] += count
    print(f"{total} samples")
    print("-- inclusive --")
    for frame, count in inclusive.most_common(top * 3):
        print(f"{100 * count / total:5.1f}%  {frame[:150]}")
    print("-- self --")
    for frame, count in own.most_common(top):
        print(f"{100 * count / total:5.1f}%  {frame[:150]}")


if __name__ == "__main__":
    summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25)
