"""What one case partition's book holds after weeks of a city, and what it costs to snapshot.

    .venv/bin/python bench/bench_book.py [--events 1000000] [--partition 0] [--seed 1]

The history is the scale bench's (`cityloop/loadtest/scale.py`: about 60,000 source events a
day, most cases closed, the newest 3% still open), for one of its four partitions. Its case
events go through their wire JSON, as the worker reads them, and are folded by
`CasePartition.restore` into a book with an archive that keeps nothing (the cases that retire
are not measured). Printed, as one JSON object:

- the fold: case events and CPU µs per event (`process_time`);
- each index of the book right after the fold (entries), before any tick: the deadline heap's
  length against the deadlines still live shows what a fold leaves behind;
- the cases left in the book after one tick at the history's end, their memory per case
  (tracemalloc of the cases unpickled), and the CPU per case of pickling and unpickling them
  (best of 5), which is most of a snapshot's cost.

Run it from two checkouts (`PYTHONPATH=DIR`) to compare two versions of the book on the same
history.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import time
import tracemalloc
from collections.abc import Iterator

from cityloop.contracts import CASE_EVENT_ADAPTER, CaseEvent, wire_bytes
from cityloop.loadtest.scale import History, history_decisions
from handlers.case import CaseState
from handlers.partition import CasePartition
from streams.garbage import leave_the_oldest_generation
from topology import load_topology


class Forget:
    """An archive that keeps nothing: only what stays in memory is measured."""

    def keep(self, states: list[CaseState]) -> None:
        pass

    def fetch(self, case_id: str) -> CaseState | None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    topology = load_topology()
    leave_the_oldest_generation()  # as the worker runs
    history = History()
    core = CasePartition(args.partition, archive=Forget())

    def ours() -> Iterator[CaseEvent]:
        for number, decision in history_decisions(topology, args.events, args.seed, 4, history):
            if number == args.partition:
                for event in decision:
                    yield CASE_EVENT_ADAPTER.validate_json(wire_bytes(event))

    started = time.process_time()
    folded = core.restore(ours())
    fold_s = time.process_time() - started
    book = core.book
    indexes = {
        name: len(value)
        for name, value in vars(book).items()
        if isinstance(value, dict | list | set)
    }
    book.due(history.ends_at)  # a tick at the history's end, as the worker's first
    book.retire(history.ends_at)
    cases = list(book.cases.values())
    pickling, unpickling = float("inf"), float("inf")
    for _ in range(5):
        started = time.process_time()
        blob = pickle.dumps(cases, protocol=pickle.HIGHEST_PROTOCOL)
        pickling = min(pickling, time.process_time() - started)
        started = time.process_time()
        pickle.loads(blob)  # noqa: S301 - bytes this process just wrote
        unpickling = min(unpickling, time.process_time() - started)
    gc.collect()
    tracemalloc.start()
    again = pickle.loads(blob)  # noqa: S301 - bytes this process just wrote
    in_memory, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del again
    print(
        json.dumps(
            {
                "source_events": history.source_events,
                "partition": args.partition,
                "case_events_folded": folded,
                "fold_us_per_event": round(1e6 * fold_s / folded, 1),
                "indexes_after_the_fold": indexes,
                "cases_after_a_tick": len(cases),
                "open_cases": book.open_count(),
                "bytes_per_case_in_memory": round(in_memory / len(cases)),
                "pickled_bytes_per_case": round(len(blob) / len(cases)),
                "pickle_us_per_case": round(1e6 * pickling / len(cases), 1),
                "unpickle_us_per_case": round(1e6 * unpickling / len(cases), 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
