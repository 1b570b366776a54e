"""The `cityloop` command: broker, worker, API, and `up` to run them all."""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import Annotated

import typer
from rich.console import Console

from cityloop.broker import EmbeddedBroker, port_open, wait_until_answers
from cityloop.cli_classifier import app as classifier_app
from cityloop.cli_classify import classify
from cityloop.cli_dlq import app as dlq_app
from cityloop.cli_loadtest import register as register_loadtest
from cityloop.cli_projection import app as projection_app
from cityloop.cli_topology import app as topology_app
from cityloop.errors import CityloopError
from cityloop.logs import configure_logging_for as configure_logging
from cityloop.settings import get_settings

# the subcommands' modules import nothing of this one (tests/test_layers.py): they are added
# to the `cityloop` command here, and take what they share from the leaf (cityloop.logs)
app = typer.Typer(no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
console = Console(stderr=True, soft_wrap=True)  # tokens and curl lines must copy whole
log = logging.getLogger(__name__)

app.add_typer(topology_app, name="topology")
app.add_typer(dlq_app, name="dlq")
app.add_typer(projection_app, name="projection")
app.add_typer(classifier_app, name="classifier")
app.command()(classify)
register_loadtest(app)


def installed_version() -> str:
    """cityloop's version as installed (the package's metadata, from pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cityloop")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"cityloop {installed_version()}")
        raise typer.Exit()


@app.callback()
def options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print cityloop's version and exit.",
        ),
    ] = False,
) -> None:
    """The `cityloop` command: broker, worker, API, and `up` to run them all."""


@app.command()
def broker() -> None:
    """Run the embedded Kafka-compatible broker (tansu, in memory) until Ctrl-C."""
    configure_logging(role="broker")
    settings = get_settings()
    with EmbeddedBroker(settings.broker_host, settings.broker_port) as running:
        console.print(
            f"embedded broker at [bold]{running.bootstrap}[/] (memory storage); Ctrl-C stops it"
        )
        _wait_for_signal()


@app.command()
def topics() -> None:
    """Create every cityloop topic that does not exist yet."""
    from streams.topics import ensure_topics

    created = ensure_topics(get_settings())
    console.print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


@app.command()
def worker(
    log_level: str = "WARNING",
    after_topic_loss: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run the stream worker (Faust): intake, dedup, routing, case events."""
    from cityloop.lifeline import stop_with_supervisor

    configure_logging(log_level, role="worker")
    stop_with_supervisor()
    from streams.event_loop import use_the_fastest_loop
    from streams.garbage import leave_the_oldest_generation

    leave_the_oldest_generation()
    use_the_fastest_loop()
    settings = get_settings()
    from streams.topic_watch import forget_committed_offsets, watch_for_topic_loss
    from streams.topics import ensure_topics

    wait_until_answers(settings.bootstrap_servers)
    created = ensure_topics(settings)
    from faust.worker import Worker

    from streams.worker import build_worker

    city_worker = build_worker(settings)
    city_worker.metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)

    if after_topic_loss:
        forget_committed_offsets(settings, city_worker.app.conf.id)
        log.warning("worker restarted after the topic loss: created %d topics again", len(created))
    watch_for_topic_loss(settings, _restart_worker)

    running = Worker(
        city_worker.app,
        loglevel=log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,  # configure_logging's format, not Faust's (nor its DEBUG root)
    )
    running.spinner = None  # it writes terminal control codes, into a log file under `up`
    running.execute_from_commandline()


def _restart_worker(lost_topics: list[str]) -> None:
    """Start the worker over: topics created again, offsets forgotten (streams.restart)."""
    log.warning(
        "the broker lost %d topics (%s; an in-memory broker restarted?): restarting the worker",
        len(lost_topics),
        ", ".join(lost_topics),
    )
    from streams.restart import start_over

    start_over(after_topic_loss=True)


@app.command()
def api(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the HTTP API (and project case events into the read model)."""
    from cityloop.lifeline import stop_with_supervisor

    configure_logging(role="api")
    stop_with_supervisor()
    import uvicorn

    from api.main import create_app

    settings = get_settings()
    wait_until_answers(settings.bootstrap_servers)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        http="httptools",
        log_level="warning",
        log_config=None,  # uvicorn writes through configure_logging's handler
        access_log=False,  # api/access.py writes the access log, with request ids
        timeout_graceful_shutdown=5,  # live streams do not end by themselves
    )


@app.command()
def audit(
    wait_s: Annotated[float, typer.Option(help="retry this long while the worker catches up")] = 0,
) -> None:
    """Check the accounting invariant; print the report as JSON; exit 1 if it does not hold."""
    import asyncio
    import json

    from cityloop.audit import run_audit

    settings = get_settings()
    deadline = time.monotonic() + wait_s
    while True:
        report = asyncio.run(run_audit(settings))
        if report.holds or time.monotonic() >= deadline:
            break
        time.sleep(2)
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    if not report.holds:
        raise typer.Exit(1)


@app.command()
def token(
    role: Annotated[
        str, typer.Option(help="publisher, department, duty_officer, dispatcher or auditor")
    ],
    scope: Annotated[
        str,
        typer.Option(
            help="publisher: its kind of source (hotline, iot, grid, duty); department: its id; "
            "duty officer, dispatcher: its area code (the whole city's too: 510100); "
            "auditor: none"
        ),
    ] = "",
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="publisher: a CloudEvent source URI it may publish (/12345/chengdu); "
            "once per source, at least one",
        ),
    ] = None,
    subject: Annotated[str | None, typer.Option(help="who holds it (default: role:scope)")] = None,
    ttl_hours: Annotated[float, typer.Option(help="hours until it expires")] = 8.0,
) -> None:
    """Mint an API bearer token, signed with CITYLOOP_JWT_SECRET (unset: the secret `cityloop
    up` keeps for its session in the data directory)."""
    from datetime import timedelta

    from api.auth import mint_token
    from cityloop.session_secret import signing_secret
    from handlers.access import principal_to_mint

    principal = principal_to_mint(role, scope, source or (), subject)
    secret, _ = signing_secret(get_settings())
    typer.echo(mint_token(secret, principal, timedelta(hours=ttl_hours)))


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="publish the bundled sample stream")] = False,
    fresh: Annotated[
        bool,
        typer.Option(help="empty the read model first, instead of keeping the earlier runs' cases"),
    ] = False,
    exit_after_demo: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Start broker (unless external), worker and API together; Ctrl-C or SIGTERM stops them all
    (a second signal kills them). On the embedded broker the cases of earlier runs are kept."""
    from cityloop.demo import publish_demo, wait_for_cases
    from cityloop.supervisor import StopRequested, Supervisor

    configure_logging(role="up")
    settings = get_settings()
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    if port_open(settings.api_host, settings.api_port):
        raise CityloopError(f"port {settings.api_port} is taken; set CITYLOOP_API_PORT")
    supervisor = Supervisor(settings, console)
    with supervisor.stop_signals():
        try:
            supervisor.start_all(fresh=fresh)
            officer = supervisor.city_duty_officer_token()
            console.print(f"cityloop is up: API at [bold]{api_url}[/] (docs: {api_url}/docs)")
            console.print(f"a city duty officer's token (8 h): {officer}")
            console.print(f"  curl -H 'Authorization: Bearer {officer}' {api_url}/v1/cases")
            if demo:
                sent = publish_demo(settings)
                console.print(f"demo: published {sent} events from all four sources")
                count = wait_for_cases(api_url, officer, timeout_s=90)
                console.print(f"demo: [bold]{count}[/] cases; look at them: {api_url}/v1/cases")
            link = supervisor.city_duty_officer_login_link(api_url)
            console.print(f"the console (一屏全观), signed in as that duty officer: {link}")
            console.print("  (it signs in once, within 15 minutes; the token above signs in too)")
            if exit_after_demo:
                return
            console.print("Ctrl-C stops everything")
            supervisor.watch()
        except StopRequested as stop:
            console.print(f"{stop}: stopping")
        finally:
            supervisor.stop_all()


def _wait_for_signal() -> None:
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def main() -> None:
    try:
        app()
    except CityloopError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(2)
