"""`cityloop generate | record | replay | evaluate | bench`: the load tester's tools."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(stderr=True)


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def _quiet_logs() -> None:
    from cityloop.logs import configure_logging_for

    configure_logging_for()


def generate(
    out: Annotated[Path, typer.Option("--out", help="the stream file to write (JSON lines)")],
    minutes: Annotated[float, typer.Option(help="how much time the stream covers")] = 10.0,
    rate: Annotated[float, typer.Option(help="mean events per second of stream time")] = 10.0,
    seed: Annotated[int, typer.Option(help="the same seed gives the same stream")] = 0,
    truth: Annotated[
        Path | None, typer.Option(help="ground-truth side file (default: OUT.truth.jsonl)")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="stream start, ISO 8601 with offset (default a July 09:00)")
    ] = None,
    topology_file: Annotated[
        Path | None, typer.Option("--topology", help="topology file (default: Chengdu)")
    ] = None,
) -> None:
    """Generate a realistic stream over the topology, and its ground truth beside it."""
    from cityloop.loadtest.generate import DEFAULT_START, ScenarioConfig, generate
    from cityloop.loadtest.streamfile import write_line, write_records
    from topology import load_topology

    if minutes <= 0 or rate <= 0:
        raise typer.BadParameter("minutes and rate must be positive")
    begin = datetime.fromisoformat(start) if start else DEFAULT_START
    if begin.tzinfo is None:
        raise typer.BadParameter("--start needs a UTC offset, e.g. 2026-07-15T09:00:00+08:00")
    stream = generate(
        load_topology(topology_file),
        ScenarioConfig(minutes=minutes, rate=rate, seed=seed, start=begin),
    )
    written = write_records(out, stream.records)
    truth_path = truth or out.with_name(out.name.removesuffix(".jsonl") + ".truth.jsonl")
    with truth_path.open("w", encoding="utf-8") as lines:
        for row in stream.truth:
            write_line(lines, row.to_json())
    counts = ", ".join(f"{name} {n}" for name, n in sorted(stream.scenario_counts().items()))
    console.print(f"wrote {written} events to {out} ({counts}); ground truth: {truth_path}")


def record(
    out: Annotated[Path, typer.Option("--out", help="the stream file to write")],
    topics: Annotated[
        list[str],
        typer.Option(
            "--topics",
            help="topics: full names, short names under the prefix (case-events, "
            "dead-letters, events.hotline) or 'sources'; repeat or comma-separate",
        ),
    ],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning/--from-now", help="read what is stored, or only new")
    ] = True,
    idle: Annotated[
        float, typer.Option(help="stop after this many seconds without a record")
    ] = 5.0,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    max_records: Annotated[int | None, typer.Option("--max", help="stop after N records")] = None,
) -> None:
    """Capture live topics with their keys, headers and timestamps to a stream file."""
    from cityloop.loadtest.record import record as record_topics
    from cityloop.loadtest.record import resolve_topics
    from cityloop.settings import get_settings
    from streams.topics import topics_for

    _quiet_logs()
    settings = get_settings()
    names = resolve_topics(topics, topics_for(settings))
    written = asyncio.run(
        record_topics(
            settings,
            names,
            out,
            from_beginning=from_beginning,
            idle_s=idle if idle > 0 else None,
            duration_s=duration,
            max_records=max_records,
        )
    )
    console.print(f"recorded {written} records from {', '.join(names)} to {out}")


def replay(
    file: Annotated[Path, typer.Argument(help="a stream file (generate or record made it)")],
    speed: Annotated[
        float | None, typer.Option(help="keep the recorded spacing, X times faster")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="events per second, evenly spaced")] = None,
    as_fast: Annotated[bool, typer.Option("--max", help="as fast as possible")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON on stdout")] = False,
    settle: Annotated[
        float, typer.Option(help="stop waiting after this many seconds without an outcome")
    ] = 10.0,
    timeout: Annotated[float | None, typer.Option(help="stop waiting after this long")] = None,
    keep_topics: Annotated[
        bool, typer.Option(help="publish to the recorded topic names, not this prefix's")
    ] = False,
    keep_timestamps: Annotated[
        bool, typer.Option(help="stamp records with their recorded timestamps, not now")
    ] = False,
    cases_out: Annotated[
        Path | None, typer.Option(help="write key → case id lines here (for evaluate)")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="the worker's consumer group (default PREFIX-worker)")
    ] = None,
) -> None:
    """Publish a stream file onto the source topics and report what became of it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cityloop.loadtest.pacing import Pacing
    from cityloop.loadtest.replay import replay as run_replay
    from cityloop.loadtest.streamfile import read_records, write_line
    from cityloop.settings import get_settings

    if sum(x is not None for x in (speed, rate)) + as_fast > 1:
        raise typer.BadParameter("choose one of --speed, --rate and --max")
    if speed is None and rate is None and not as_fast:
        speed = 1.0
    _quiet_logs()
    records = list(read_records(file))
    pacing = Pacing(speed=speed, rate=rate)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=as_json,
    ) as bar:
        sent_task = bar.add_task("sent", total=len(records))
        done_task = bar.add_task("accounted for", total=len(records))

        def progress(sent: int, accounted: int, total: int) -> None:
            bar.update(sent_task, completed=sent)
            bar.update(done_task, completed=accounted)

        report = asyncio.run(
            run_replay(
                records,
                get_settings(),
                pacing,
                keep_topics=keep_topics,
                keep_timestamps=keep_timestamps,
                settle_s=settle,
                timeout_s=timeout,
                group=group,
                progress=progress,
            )
        )
    if cases_out is not None:
        with cases_out.open("w", encoding="utf-8") as lines:
            for key, case_id in report.assignment.items():
                write_line(lines, {"key": key, "case_id": case_id})
    if as_json:
        _print_json(report.to_json())
        return
    latency = report.latency
    dead = ", ".join(f"{k} {v}" for k, v in sorted(report.dead_letters.items())) or "none"
    console.print(
        f"[bold]replay[/] of {report.records} records ({report.pacing})\n"
        f"  sent {report.sent}, acknowledged {report.acknowledged}, "
        f"failed {report.send_failed}, accounted for {report.accounted}, "
        f"unaccounted {report.unaccounted}\n"
        f"  cases opened {report.cases_opened}, reports attached {report.reports_attached}, "
        f"exact duplicates {report.duplicates_received}\n"
        f"  dead letters: {dead}\n"
        f"  send rate {report.send_rate:,.0f}/s; throughput {report.throughput:,.0f} events/s "
        f"over {report.seconds:.1f} s\n"
        f"  latency publish → dispatched/attached (n={latency['count']:.0f}): "
        f"p50 {latency['p50_ms']:.0f} ms, p95 {latency['p95_ms']:.0f} ms, "
        f"p99 {latency['p99_ms']:.0f} ms, max {latency['max_ms']:.0f} ms"
    )
    if report.lag:
        peak = max(row.get("group_lag", 0.0) for row in report.lag)
        in_flight = max(row["in_flight"] for row in report.lag)
        console.print(f"  consumer lag: peak {peak:,.0f} records; peak in flight {in_flight:,.0f}")


def evaluate(
    truth: Annotated[Path, typer.Option(help="ground truth (generate wrote it)")],
    cases: Annotated[
        list[Path],
        typer.Option(help="recorded case-event stream file(s), or replay --cases-out files"),
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare case assignment with the ground truth: pairwise precision, recall, F1."""
    from cityloop.loadtest.evaluate import dedup_quality, read_assignment, read_truth

    assignment: dict[str, str] = {}
    for path in cases:
        assignment.update(read_assignment(path))
    quality = dedup_quality(read_truth(truth), assignment)
    if as_json:
        _print_json(quality.to_json())
        return
    console.print(
        f"[bold]dedup quality[/] over {quality.reports} reports "
        f"({quality.unassigned} in no case, {quality.unknown} not in the truth)\n"
        f"  {quality.incidents} real incidents → {quality.cases} cases\n"
        f"  pairwise precision {quality.precision:.4f}, recall {quality.recall:.4f}, "
        f"F1 {quality.f1:.4f}\n"
        f"  incidents split into several cases: {quality.split_incidents}; "
        f"cases merging different incidents: {quality.merged_cases}"
    )


def register(app: typer.Typer) -> None:
    """Add the load-testing commands to the `cityloop` command."""
    app.command()(generate)
    app.command()(record)
    app.command()(replay)
    app.command()(evaluate)
    from cityloop.loadtest.bench import bench

    app.command()(bench)
