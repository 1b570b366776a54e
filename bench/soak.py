"""Soak: the whole system (broker, worker, API) under a steady paced load for a long time, with
memory, lag and latency sampled as it runs, and the accounting invariant checked at the end.

    .venv/bin/python bench/soak.py --minutes 30 --rate 1000 --out soak.json

What it does, in order:
1. generates the stream with the project's generator (`cityloop generate`, Chengdu, the seed
   given) into `--workdir`, unless a stream of the same minutes, rate and seed is there already;
2. starts the embedded broker, a worker and the API as `cityloop up` does (`Supervisor`), on
   free ports and a fresh topic prefix, or with `--attach` uses a system already running with
   the current CITYLOOP_* settings (then `--worker-pid`/`--api-pid` name what to sample);
3. warms up (30 events through the pipeline, so the group join is not counted), then publishes
   the stream evenly paced at `--rate` events/s, reading the file as it goes;
4. every `--sample-s` seconds records: events sent and acknowledged, case events seen by type,
   dead letters, publish → first case outcome latency (p50/p99 of the interval), the lag of
   the worker's group (committed against end offsets, on the sources and on the incidents) and
   of the API's projector (on the case events), and the resident memory and CPU of worker,
   API, broker and this process (psutil if installed, else /proc);
5. after the last send, waits up to `--drain-s` for the worker and the read model to catch up,
   stops the worker (its memory is not needed for the audit), runs `cityloop audit` (timed,
   with its peak memory), and writes the report as JSON (`--out`) and a markdown table beside
   it (`.md`); the table is printed too. Exit status 1 when the audit does not hold.

With `--close-after-s S` a coordinating centre closes each case S seconds after it was
dispatched (a `close` command on the case-control topic, keyed as the API keys it, from the
city's centre), so that cases finish as in a city and the worker's memory can be watched while
they leave it: give the worker short windows for that, e.g.
`CITYLOOP_FINISHED_CASE_HOURS=0.05 CITYLOOP_IDEMPOTENCY_WINDOW_HOURS=0.1` (3 and 6 minutes
instead of 6 and 48 hours).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import platform
import resource
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from cityloop.broker import free_port
from cityloop.contracts import CloseCase, wire_bytes
from cityloop.loadtest.audited import audit_in_child
from cityloop.loadtest.generate import ScenarioConfig, generate
from cityloop.loadtest.pacing import Pacing, percentile
from cityloop.loadtest.replay import idempotency_key, replay, target_topic
from cityloop.loadtest.streamfile import StreamRecord, read_records
from cityloop.logs import configure_logging_for as configure_logging
from cityloop.settings import Settings
from cityloop.supervisor import Supervisor
from streams.clients import async_consumer, async_producer
from streams.topics import Topics, ensure_topics, topics_for
from topology import load_topology

console = Console(stderr=True, soft_wrap=True)
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024
TICKS = os.sysconf("SC_CLK_TCK")
CASE_OUTCOMES = ("CaseOpened", "ReportAttached", "DuplicateReceived")
"""The case events that name the record that caused them: the first outcome of a record."""


# --- processes ---------------------------------------------------------------------------------


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MB (None when it is gone or unknown)."""
    if pid is None:
        return None
    try:
        psutil = importlib.import_module("psutil")  # optional: /proc below does without it
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    except Exception:  # the process is gone
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used so far."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


@dataclass
class Watched:
    """The processes whose memory and CPU the soak samples."""

    pids: dict[str, int | None]
    _last_cpu: dict[str, tuple[float, float]] = field(default_factory=dict)

    def sample(self) -> dict[str, float | None]:
        row: dict[str, float | None] = {}
        now = time.monotonic()
        for role, pid in self.pids.items():
            row[f"{role}_rss_mb"] = _round(rss_mb(pid), 1)
            used = cpu_seconds(pid)
            before = self._last_cpu.get(role)
            share = None
            if used is not None and before is not None and now > before[0]:
                share = 100.0 * (used - before[1]) / (now - before[0])
            if used is not None:
                self._last_cpu[role] = (now, used)
            row[f"{role}_cpu_pct"] = _round(share, 1)
        return row


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# --- the stream --------------------------------------------------------------------------------


def stream_file(workdir: Path, minutes: float, rate: float, seed: int) -> Path:
    """The generated stream for these parameters, made once with `cityloop generate`."""
    path = workdir / f"soak-{minutes:g}m-{rate:g}ps-seed{seed}.jsonl"
    if path.exists() and path.with_suffix(".done").exists():
        console.print(f"stream: reusing {path}")
        return path
    console.print(f"stream: generating {minutes:g} min at {rate:g}/s into {path}")
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cityloop",
            "generate",
            "--minutes",
            f"{minutes:g}",
            "--rate",
            f"{rate:g}",
            "--seed",
            str(seed),
            "--out",
            str(path),
        ],
        check=True,
    )
    path.with_suffix(".done").write_text(f"{time.monotonic() - started:.1f} s\n")
    return path


def lean(records: Iterator[StreamRecord]) -> Iterator[StreamRecord]:
    """Records without their decoded JSON (only the bytes travel), read as they are needed."""
    for record in records:
        yield StreamRecord(value=record.value, key=record.key, source=record.source)


# --- lag ---------------------------------------------------------------------------------------


def group_lag(settings: Settings, source_ends: dict[tuple[str, int], int]) -> dict[str, int]:
    """How far behind the ends the groups have committed: the worker's on the source topics
    (ends from this soak's acknowledgements, exact) and on the incidents topic, and the API's
    projector on the case-event topic (ends as the broker reports them: the embedded broker
    answers a batch short, so these two read a little low)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    names = topics_for(settings)
    group = f"{settings.topic_prefix}-worker"  # the Faust app id
    projector_group = f"{settings.topic_prefix}-projector"  # api/main.py
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        incident_partitions = [
            TopicPartition(names.incidents, p)
            for p in consumer.partitions_for_topic(names.incidents) or []
        ]
        case_partitions = [
            TopicPartition(names.case_events, p)
            for p in consumer.partitions_for_topic(names.case_events) or []
        ]
        asked = [TopicPartition(topic, p) for topic, p in source_ends] + incident_partitions
        committed = _committed(admin, group, asked)
        projected = _committed(admin, projector_group, case_partitions)
        ends = {
            (tp.topic, tp.partition): end
            for tp, end in consumer.end_offsets(incident_partitions + case_partitions).items()
        }
    finally:
        admin.close()
        consumer.close()

    def behind(ends: dict[tuple[str, int], int], done: dict[tuple[str, int], int]) -> int:
        return sum(max(0, end - max(done.get(where, 0), 0)) for where, end in ends.items())

    return {
        "lag_sources": behind(source_ends, committed),
        "lag_incidents": behind(
            {k: v for k, v in ends.items() if k[0] == names.incidents}, committed
        ),
        "lag_projection": behind(
            {k: v for k, v in ends.items() if k[0] == names.case_events}, projected
        ),
    }


def _committed(admin: Any, group: str, partitions: list[Any]) -> dict[tuple[str, int], int]:
    offsets = admin.list_group_offsets({group: partitions}).get(group, {})
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Soak:
    settings: Settings
    rate: float
    sample_s: float
    watched: Watched
    started: float = 0.0
    phase: str = "publish"
    sent: int = 0
    acknowledged: int = 0
    send_failed: int = 0
    case_events: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    outcomes: int = 0
    source_ends: dict[tuple[str, int], int] = field(default_factory=dict)
    pending: dict[str, deque[float]] = field(default_factory=dict)
    """Idempotency key → publish times of its records not yet seen on a case."""
    interval_latencies: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    untracked: int = 0
    """Records sent with no idempotency key (not CloudEvents): no outcome can name them."""
    observer_ready: asyncio.Event = field(default_factory=asyncio.Event)
    close_after_s: float | None = None
    correlation_keys: dict[str, str] = field(default_factory=dict)
    """Case id → its correlation key, from its `CaseOpened`, until the case is closed."""
    to_close: deque[tuple[float, str]] = field(default_factory=deque)
    """(when, case id) of each dispatched case to close, in the order they fall due."""
    closes_sent: int = 0

    def on_sent(self, key: str | None) -> None:
        self.sent += 1
        if key is None:
            self.untracked += 1
            return
        self.pending.setdefault(key, deque()).append(time.time())

    def on_ack(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.send_failed += 1
            return
        self.acknowledged += 1
        meta = future.result()
        where = (meta.topic, meta.partition)
        self.source_ends[where] = max(self.source_ends.get(where, 0), meta.offset + 1)

    def on_outcome(self, key: Any, seen_at: float) -> None:
        waiting = self.pending.get(key) if isinstance(key, str) else None
        if not waiting:
            return
        latency_ms = (seen_at - waiting.popleft()) * 1000.0
        if not waiting:
            del self.pending[key]
        self.outcomes += 1
        self.interval_latencies.append(latency_ms)
        self.latencies.append(latency_ms)

    async def observe(self, names: Topics, stop: asyncio.Event) -> None:
        consumer = async_consumer(
            self.settings,
            names.case_events,
            names.dead_letters,
            group_id=None,
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            while not consumer.assignment():  # noqa: ASYNC110 - no group: assigned with metadata
                await asyncio.sleep(0.05)
            await consumer.seek_to_end()
            for partition in consumer.assignment():
                await consumer.position(partition)
            self.observer_ready.set()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                seen_at = time.time()
                for partition, messages in batches.items():
                    for message in messages:
                        self._take(partition.topic == names.dead_letters, message.value, seen_at)
        finally:
            await consumer.stop()

    def _take(self, dead: bool, value: bytes | None, seen_at: float) -> None:
        try:
            document = json.loads(value or b"")
        except ValueError:
            return
        if not isinstance(document, dict):
            return
        if dead:
            self.dead_letters[str(document.get("reason"))] += 1
            self.on_outcome(document.get("idempotency_key"), seen_at)
            return
        kind = str(document.get("type"))
        self.case_events[kind] += 1
        if self.close_after_s is not None:
            case_id = str(document.get("case_id"))
            if kind == "CaseOpened":
                self.correlation_keys[case_id] = str(document.get("correlation_key"))
            elif kind == "CaseDispatched" and case_id in self.correlation_keys:
                self.to_close.append((seen_at + self.close_after_s, case_id))
        if kind in CASE_OUTCOMES:
            report = document.get("first_report") or document.get("report") or document
            self.on_outcome(report.get("idempotency_key"), seen_at)

    async def sample_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.sample_s)
                return  # stopped: the caller takes the last sample
            except TimeoutError:
                pass
            await self.sample()

    async def sample(self) -> dict[str, Any]:
        values = sorted(self.interval_latencies)
        self.interval_latencies = []
        row: dict[str, Any] = {
            "t_s": round(time.monotonic() - self.started, 1),
            "phase": self.phase,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "outcomes": self.outcomes,
            "in_flight": sum(len(times) for times in self.pending.values()),
            "cases_opened": self.case_events["CaseOpened"],
            "cases_closed": self.case_events["CaseClosed"],
            "case_events": sum(self.case_events.values()),
            "dead_letters": sum(self.dead_letters.values()),
            "p50_ms": round(percentile(values, 0.5), 1) if values else None,
            "p99_ms": round(percentile(values, 0.99), 1) if values else None,
        }
        try:
            row.update(await asyncio.to_thread(group_lag, self.settings, dict(self.source_ends)))
        except Exception as exc:  # a broker that does not answer in time: no figure this time
            row["lag_error"] = str(exc)[:200]
        row.update(self.watched.sample())
        self.samples.append(row)
        console.print(
            f"  {row['t_s']:>7.0f} s {row['phase']:<7} sent {row['sent']:>9,} "
            f"outcomes {row['outcomes']:>9,} lag {row.get('lag_sources', '?')}/"
            f"{row.get('lag_incidents', '?')}/{row.get('lag_projection', '?')} "
            f"p99 {row['p99_ms']} ms "
            f"RSS worker {row.get('worker_rss_mb')} api {row.get('api_rss_mb')} MB"
            + (f" (lag: {row['lag_error']})" if "lag_error" in row else "")
        )
        return row


async def close_cases(soak: Soak, names: Topics, city: str, stop: asyncio.Event) -> None:
    """The city's centre closes each dispatched case once it is due (each case once)."""
    producer = async_producer(soak.settings)
    await producer.start()
    try:
        while not stop.is_set():
            now = time.time()
            while soak.to_close and soak.to_close[0][0] <= now:
                _, case_id = soak.to_close.popleft()
                key = soak.correlation_keys.pop(case_id, None)
                if key is None:
                    continue  # closed already (dispatched again since: escalated, re-routed)
                command = CloseCase(
                    command_id=f"soak-close-{case_id}",
                    case_id=case_id,
                    actor=f"centre:{city}",
                    issued_at=datetime.now(UTC),
                    reason="soak: handled",
                )
                await producer.send(names.case_control, key=key.encode(), value=wire_bytes(command))
                soak.closes_sent += 1
            await asyncio.sleep(0.2)
        await producer.flush()
    finally:
        await producer.stop()


async def publish_paced(soak: Soak, records: Iterator[StreamRecord], names: Topics) -> float:
    """Send every record at start + i / rate; returns how long sending took."""
    producer = async_producer(soak.settings)
    await producer.start()
    began = time.monotonic()
    try:
        for index, record in enumerate(records):
            wait = began + index / soak.rate - time.monotonic()
            if wait > 0.001:
                await asyncio.sleep(wait)
            soak.on_sent(idempotency_key(record))
            future = await producer.send(
                target_topic(record, names, keep_topics=False), value=record.value, key=record.key
            )
            future.add_done_callback(soak.on_ack)
        await producer.flush()
    finally:
        await producer.stop()
    return time.monotonic() - began


async def drain(soak: Soak, timeout_s: float) -> float:
    """Until every record sent has an outcome, the worker's group has committed everything, and
    the API's projector has caught up with the case events (as far as the end offsets tell:
    `cityloop audit --wait-s` waits for the rest)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        last = soak.samples[-1] if soak.samples else {}
        # no lag figure (the broker did not answer the group query): the outcomes decide
        caught_up = "lag_error" in last or all(
            last.get(lag) == 0 for lag in ("lag_sources", "lag_incidents", "lag_projection")
        )
        if soak.outcomes + soak.send_failed + soak.untracked >= soak.sent and caught_up:
            break
        await asyncio.sleep(1.0)
    return time.monotonic() - began


async def run_soak(
    settings: Settings,
    stream: Path,
    rate: float,
    sample_s: float,
    drain_s: float,
    watched: Watched,
    close_after_s: float | None = None,
) -> tuple[Soak, dict[str, float]]:
    names = topics_for(settings)
    await asyncio.to_thread(ensure_topics, settings)
    timings: dict[str, float] = {}
    began = time.monotonic()
    warm = generate(
        load_topology(settings.topology_file), ScenarioConfig(minutes=1, rate=1, seed=999)
    )
    report = await replay(warm.records[:30], settings, Pacing(), settle_s=90, timeout_s=180)
    if report.accounted < min(30, len(warm.records)):
        raise RuntimeError(f"the worker did not come up: {report.accounted} of 30 accounted")
    timings["warm_up_s"] = round(time.monotonic() - began, 1)

    soak = Soak(settings, rate, sample_s, watched, close_after_s=close_after_s)
    stop = asyncio.Event()
    observer = asyncio.create_task(soak.observe(names, stop))
    closer = (
        asyncio.create_task(
            close_cases(soak, names, load_topology(settings.topology_file).city, stop)
        )
        if close_after_s is not None
        else None
    )
    await asyncio.wait_for(soak.observer_ready.wait(), timeout=30)
    soak.started = time.monotonic()
    await soak.sample()  # the baseline row
    sampler = asyncio.create_task(soak.sample_forever(stop))
    try:
        timings["publish_s"] = round(
            await publish_paced(soak, lean(read_records(stream)), names), 1
        )
        soak.phase = "drain"
        timings["drain_s"] = round(await drain(soak, drain_s), 1)
    finally:
        stop.set()
        tasks = [observer, sampler] + ([closer] if closer is not None else [])
        await asyncio.gather(*tasks, return_exceptions=True)
    soak.phase = "end"
    await soak.sample()
    return soak, timings


def stop_child(child: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM to a child the Supervisor started (its own session), SIGKILL if it lingers."""
    if child.poll() is not None:
        return
    os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


# --- the report --------------------------------------------------------------------------------


def trend_mb_per_min(samples: list[dict[str, Any]], column: str) -> float | None:
    """Least-squares slope of a memory column over the second half of the publishing phase."""
    rows = [row for row in samples if row["phase"] == "publish" and row.get(column) is not None]
    rows = rows[len(rows) // 2 :]
    if len(rows) < 3:
        return None
    xs = [float(row["t_s"]) / 60 for row in rows]
    ys = [float(row[column]) for row in rows]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return round(sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread, 2)


def summarise(
    soak: Soak, timings: dict[str, float], audit: dict[str, Any], roles: list[str]
) -> dict[str, Any]:
    values = sorted(soak.latencies)
    memory = {}
    for role in roles:
        column = f"{role}_rss_mb"
        series = [row[column] for row in soak.samples if row.get(column) is not None]
        if series:
            memory[role] = {
                "first_mb": series[0],
                "max_mb": max(series),
                "last_mb": series[-1],
                "trend_mb_per_min_second_half": trend_mb_per_min(soak.samples, column),
            }
    lags = [row.get("lag_sources", 0) + row.get("lag_incidents", 0) for row in soak.samples]
    projection = [row.get("lag_projection", 0) for row in soak.samples]
    verdict = audit.get("report", {})
    return {
        "sent": soak.sent,
        "acknowledged": soak.acknowledged,
        "send_failed": soak.send_failed,
        "send_rate_per_s": round(soak.sent / max(timings.get("publish_s", 0.0), 1e-9), 1),
        "outcomes": soak.outcomes,
        "without_outcome": soak.sent - soak.outcomes,
        "case_events": dict(soak.case_events),
        "closes_sent": soak.closes_sent,
        "dead_letters": dict(soak.dead_letters),
        "latency_ms": {
            "count": len(values),
            "p50": round(percentile(values, 0.5), 1),
            "p99": round(percentile(values, 0.99), 1),
            "max": round(values[-1], 1) if values else 0.0,
        },
        "lag_max": max(lags, default=0),
        "lag_end": lags[-1] if lags else None,
        "projection_lag_max": max(projection, default=0),
        "memory": memory,
        "timings_s": timings,
        "audit": {
            "holds": verdict.get("holds"),
            "entered": verdict.get("entered"),
            "unaccounted": verdict.get("unaccounted_count"),
            "seconds": audit.get("seconds"),
            "peak_rss_mb": audit.get("peak_rss_mb"),
            "exit_code": audit.get("exit_code"),
        },
    }


def markdown(report: dict[str, Any], max_rows: int = 40) -> str:
    samples = report["samples"]
    step = max(1, -(-len(samples) // max_rows))
    shown = samples[::step]
    if samples and shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    roles = report["config"]["sampled"]
    header = (
        "| t (s) | phase | sent | outcomes | in flight | lag sources / incidents / read model | "
        "p50 / p99 ms | " + " | ".join(f"{role} RSS MB (CPU %)" for role in roles) + " |"
    )
    lines = [header, "|" + " --- |" * (7 + len(roles))]

    def show(value: Any) -> str:
        return "–" if value is None else f"{value:,}" if isinstance(value, int) else f"{value}"

    for row in shown:
        memory = " | ".join(
            f"{show(row.get(f'{role}_rss_mb'))} ({show(row.get(f'{role}_cpu_pct'))})"
            for role in roles
        )
        lines.append(
            f"| {row['t_s']:.0f} | {row['phase']} | {row['sent']:,} | {row['outcomes']:,} | "
            f"{row['in_flight']:,} | {show(row.get('lag_sources'))} / "
            f"{show(row.get('lag_incidents'))} / {show(row.get('lag_projection'))} | "
            f"{show(row['p50_ms'])} / {show(row['p99_ms'])} | "
            f"{memory} |"
        )
    summary = report["summary"]
    config = report["config"]
    memory_lines = [
        f"- {role}: RSS {m['first_mb']} → max {m['max_mb']} → last {m['last_mb']} MB; trend over "
        f"the second half of publishing {m['trend_mb_per_min_second_half']} MB/min"
        for role, m in summary["memory"].items()
    ]
    audit = summary["audit"]
    return "\n".join(
        [
            f"Soak of {config['started_at']}: {config['minutes']:g} min at {config['rate']:g} "
            f"events/s (seed {config['seed']}), samples every {config['sample_s']:g} s.",
            "",
            *lines,
            "",
            f"- sent {summary['sent']:,} ({summary['send_rate_per_s']:,}/s), acknowledged "
            f"{summary['acknowledged']:,}, send failures {summary['send_failed']}; "
            f"with an outcome {summary['outcomes']:,}, without {summary['without_outcome']:,}",
            f"- latency publish → first case outcome: p50 {summary['latency_ms']['p50']:,} ms, "
            f"p99 {summary['latency_ms']['p99']:,} ms, max {summary['latency_ms']['max']:,} ms",
            f"- lag (records the worker group has not committed): max {summary['lag_max']:,}, "
            f"at the end {show(summary['lag_end'])}; the read model's projector at most "
            f"{summary['projection_lag_max']:,} case events behind",
            *memory_lines,
            f"- timings: {summary['timings_s']}",
            f"- audit: holds {audit['holds']}, entered {show(audit['entered'])}, unaccounted "
            f"{show(audit['unaccounted'])}; took {audit['seconds']} s, peak RSS "
            f"{audit['peak_rss_mb']} MB",
        ]
    )


# --- command line ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to publish")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--drain-s", type=float, default=3600.0, help="wait at most this long to catch up"
    )
    parser.add_argument("--audit-wait-s", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=Path("soak.json"), help="the JSON report")
    parser.add_argument("--workdir", type=Path, default=Path("var/soak"))
    parser.add_argument(
        "--attach",
        action="store_true",
        help="use the system the CITYLOOP_* settings name, already running",
    )
    parser.add_argument("--worker-pid", type=int, help="with --attach: the worker to sample")
    parser.add_argument("--api-pid", type=int, help="with --attach: the API to sample")
    parser.add_argument(
        "--close-after-s",
        type=float,
        help="close each case this long after it is dispatched, as its centre would",
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0:
        parser.error("--minutes and --rate must be positive")

    configure_logging()
    # each lag sample opens a group-less kafka-python consumer, which warns that it cannot commit
    logging.getLogger("kafka").setLevel(logging.ERROR)
    args.workdir.mkdir(parents=True, exist_ok=True)
    stream = stream_file(args.workdir, args.minutes, args.rate, args.seed)
    run = f"soak-{uuid.uuid4().hex[:6]}"
    supervisor: Supervisor | None = None
    if not args.attach:
        data_dir = (args.workdir / run).resolve()
        os.environ.update(
            {
                "CITYLOOP_TOPIC_PREFIX": run,
                "CITYLOOP_BROKER_PORT": str(free_port()),
                "CITYLOOP_API_PORT": str(free_port()),
                "CITYLOOP_DATA_DIR": str(data_dir),
                "CITYLOOP_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/cases.db",
                "CITYLOOP_JWT_SECRET": os.environ.get("CITYLOOP_JWT_SECRET")
                or secrets.token_urlsafe(32),
            }
        )
        os.environ.pop("CITYLOOP_KAFKA_BOOTSTRAP_SERVERS", None)
    settings = Settings()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        if args.attach:
            pids = {"worker": args.worker_pid, "api": args.api_pid}
        else:
            supervisor = Supervisor(settings, console)
            supervisor.start_all()
            broker_process = getattr(supervisor.broker, "_process", None)  # its pid: for RSS
            pids = {
                "worker": supervisor.children["worker"].pid,
                "api": supervisor.children["api"].pid,
                "broker": broker_process.pid if broker_process is not None else None,
            }
            console.print(f"system up: prefix {run}, logs in {settings.data_dir / 'logs'}")
        pids["soak"] = os.getpid()  # this process: it shares the machine with the others
        watched = Watched(pids)
        soak, timings = asyncio.run(
            run_soak(
                settings,
                stream,
                args.rate,
                args.sample_s,
                args.drain_s,
                watched,
                args.close_after_s,
            )
        )
        if supervisor is not None:
            # the worker is done: free its memory for the audit (the API stays: the audit
            # waits for its read model to catch up)
            stop_child(supervisor.children["worker"])
        console.print("audit: `cityloop audit`")
        audit = audit_in_child(os.environ, args.audit_wait_s, args.workdir)
    finally:
        if supervisor is not None:
            supervisor.stop_all()
    roles = list(pids)
    report: dict[str, Any] = {
        "config": {
            "minutes": args.minutes,
            "rate": args.rate,
            "seed": args.seed,
            "sample_s": args.sample_s,
            "close_after_s": args.close_after_s,
            "finished_case_hours": settings.finished_case_hours,
            "idempotency_window_hours": settings.idempotency_window_hours,
            "stream": str(stream),
            "prefix": settings.topic_prefix,
            "attached": args.attach,
            "sampled": roles,
            "started_at": started_at,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "soak_process_peak_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
        },
        "summary": summarise(soak, timings, audit, roles),
        "samples": soak.samples,
        "audit": audit,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    table = markdown(report)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    console.print(f"report: {args.out} and {args.out.with_suffix('.md')}")
    return 0 if report["summary"]["audit"]["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
