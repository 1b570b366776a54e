"""Errors of the responsibility graph: a file that cannot be a topology, a case it cannot route."""

from __future__ import annotations

from collections.abc import Sequence

from cityloop.errors import CityloopError


class TopologyError(CityloopError):
    """Base of every error the topology package raises."""


class TopologyValidationError(TopologyError):
    """A topology document that cannot be used; `problems` has one line per problem."""

    def __init__(self, problems: Sequence[str], source: str = "topology") -> None:
        self.problems: list[str] = list(problems)
        self.source = source
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


class UnroutableError(TopologyError):
    """A routing question the topology cannot answer.

    `reason` is one of "unknown_category", "unknown_area", "no_area", "no_department":
    the first two map onto the dead-letter reasons of the same names, the others onto
    "unroutable".
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
