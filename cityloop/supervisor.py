"""Runs broker, worker and API as one unit for `cityloop up`, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import httpx
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from cityloop.broker import EmbeddedBroker
from cityloop.errors import CityloopError, ConfigurationError
from cityloop.lifeline import child_environment, child_setup
from cityloop.session_secret import new_session_secret, write_session_secret
from cityloop.settings import Settings

if TYPE_CHECKING:
    from handlers.access import Principal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 15.0
"""How long the API and the worker have to stop before they are killed."""
BROKER_GRACE_S = 5.0


class StopRequested(KeyboardInterrupt):
    """A stop signal reached `up`: raised where it was, like Ctrl-C's KeyboardInterrupt."""


class Supervisor:
    def __init__(self, settings: Settings, console: Console):
        self.settings = settings
        self.console = console
        self.broker: EmbeddedBroker | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False
        self._forced = False
        # the API needs a signing secret; without one configured, this session makes its own
        self.jwt_secret = settings.jwt_secret.get_secret_value() or new_session_secret()

    @contextlib.contextmanager
    def stop_signals(self) -> Iterator[None]:
        """SIGINT, SIGTERM and SIGHUP stop everything, whatever `up` inherited (a script's
        `cityloop up &` starts it with SIGINT ignored): the first raises StopRequested where `up`
        is, so that it stops what it started; one during the stop kills what is left."""
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self._forced = True
            return
        self._stopping = True
        raise StopRequested(signal.Signals(signum).name)

    def start_all(self, ready_timeout_s: float = 60.0, fresh: bool = False) -> None:
        if fresh and not self.settings.embedded_broker:
            raise ConfigurationError(
                "--fresh starts the embedded broker's cases afresh; an external Kafka keeps its "
                "topics, and the read model follows them (`cityloop projection rebuild` folds "
                "them into it again)"
            )
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._keep_secret()
        if self.settings.embedded_broker:
            self.broker = EmbeddedBroker(
                self.settings.broker_host,
                self.settings.broker_port,
                logs / "broker.log",
                own_session=True,  # like the worker and the API: Ctrl-C is for `up` to handle
                child_setup=child_setup(os.getpid()),
            ).start()
            self.console.print(f"embedded broker at {self.broker.bootstrap} (memory storage)")
            self._restore(fresh)
        for role in ("worker", "api"):
            log_file = open(logs / f"{role}.log", "ab")  # noqa: SIM115 - the child owns it
            self.children[role] = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "cityloop", role],
                env={
                    **os.environ,
                    "CITYLOOP_JWT_SECRET": self.jwt_secret,
                    **child_environment(os.getpid()),
                },
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=child_setup(os.getpid()),
            )
        self._wait_ready(ready_timeout_s, logs)

    def _keep_secret(self) -> None:
        """Say what signs this session's tokens; a secret made for it goes to the data
        directory's secret file (0600), where `cityloop token` finds it."""
        if self.settings.jwt_secret.get_secret_value():
            self.console.print(
                "API tokens are signed with CITYLOOP_JWT_SECRET; mint more with `cityloop token`"
            )
            return
        path = write_session_secret(self.settings, self.jwt_secret)
        self.console.print(
            f"API tokens are signed with this session's secret, kept in {path} (0600); "
            "with the same CITYLOOP_DATA_DIR, `cityloop token --role ROLE --scope SCOPE` mints "
            "more for it"
        )

    def _restore(self, fresh: bool) -> None:
        """The embedded broker starts empty: the read model's case events go back on it before
        the worker starts, so that the worker's case book and the read model agree and old
        cases take commands (api/restore.py); `fresh` empties the read model instead."""
        from api.restore import empty_read_model, restore_case_events
        from cityloop.logs import redacted_url
        from streams.keep import KEPT_DIR, put_back_kept
        from streams.topics import ensure_topics

        database = redacted_url(self.settings.database_url)
        kept = self.settings.data_dir / KEPT_DIR
        try:
            if fresh:
                shutil.rmtree(kept, ignore_errors=True)
                dropped = asyncio.run(empty_read_model(self.settings))
                self.console.print(
                    f"fresh start: emptied the read model at {database} ({dropped} case events)"
                )
                return
            ensure_topics(self.settings)
            started = time.monotonic()
            restored = asyncio.run(restore_case_events(self.settings))
        except (OSError, SQLAlchemyError) as exc:  # the API could not start on it either
            raise CityloopError(f"the read model at {database} does not answer: {exc}") from exc
        if restored.events:
            self.console.print(
                f"kept from earlier runs: {restored.cases} cases, {restored.events} case events "
                f"from {database}, put back on the broker in "
                f"{time.monotonic() - started:.1f}s (start afresh with --fresh)"
            )
        states = put_back_kept(self.settings, kept)
        if any(states.values()):
            self.console.print(
                "kept from the last run: "
                + ", ".join(f"{count} {name} record(s)" for name, count in states.items())
                + f" ({kept})"
            )

    def _keep_broker_state(self) -> None:
        """Before the embedded broker stops: the areas' modes and the topology and classifier
        versions in service go to the data directory (streams/keep.py)."""
        from streams.keep import KEPT_DIR, save_kept

        try:
            save_kept(self.settings, self.settings.data_dir / KEPT_DIR, timeout_s=5.0)
        except Exception as exc:  # the stop goes on; what an earlier stop kept stays
            self.console.print(f"[red]could not keep the modes and versions: {exc!r}[/]")

    def _wait_ready(self, timeout_s: float, logs: Path) -> None:
        url = f"http://{self.settings.api_host}:{self.settings.api_port}/healthz"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for role, child in self.children.items():
                if child.poll() is not None:
                    raise CityloopError(
                        f"the {role} exited ({child.returncode}); see {logs}/{role}.log"
                    )
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise CityloopError(f"the API did not answer at {url} within {timeout_s:.0f}s")

    def _city_duty_officer(self) -> Principal:
        """The duty officer of the topology's city centre: sees every case."""
        from handlers.access import Principal, Role
        from topology import load_topology

        city = load_topology(self.settings.topology_file).city
        return Principal(subject="demo-duty-officer", role=Role.DUTY_OFFICER, scope=city)

    def city_duty_officer_token(self) -> str:
        """A bearer token of the city's duty officer."""
        from api.auth import mint_token

        return mint_token(self.jwt_secret, self._city_duty_officer(), timedelta(hours=8))

    def city_duty_officer_login_link(self, api_url: str) -> str:
        """A one-time link that signs the city's duty officer in to the console; the ticket in
        it is spent on first use and expires after LOGIN_TICKET_TTL."""
        from api.auth import mint_login_ticket
        from api.console.session import LOGIN_TICKET_TTL

        ticket = mint_login_ticket(self.jwt_secret, self._city_duty_officer(), LOGIN_TICKET_TTL)
        return f"{api_url}/console/login?ticket={ticket}"

    def watch(self) -> None:
        """Block until a stop signal (StopRequested, raised by the handler `stop_signals`
        installs) or until a child dies: the broker too, for a worker and an API left without
        theirs would retry it for ever, and the next `up` puts back what the read model holds."""
        while True:
            for role, child in self.children.items():
                if child.poll() is not None:
                    self.console.print(f"[red]the {role} exited ({child.returncode})[/]")
                    return
            if self.broker is not None and (code := self.broker.exit_code()) is not None:
                self.console.print(f"[red]the embedded broker exited ({code})[/]")
                return
            time.sleep(0.5)

    def stop_all(self, timeout_s: float = GRACE_S) -> None:
        """API and worker first (SIGTERM to their process groups, SIGKILL after `timeout_s` or
        at a second signal), then the broker they were using."""
        self._stopping = True
        for child in self.children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while any(child.poll() is None for child in self.children.values()):
            if self._forced or time.monotonic() > deadline:
                for role, child in self.children.items():
                    if child.poll() is None:
                        self.console.print(f"[red]killing the {role}[/]")
                        _signal_group(child, signal.SIGKILL)
                        child.wait()
                break
            time.sleep(0.05)
        self.children.clear()
        if self.broker is not None:
            if not self._forced and self.broker.exit_code() is None:
                self._keep_broker_state()
            self.broker.stop(0.0 if self._forced else BROKER_GRACE_S)
            self.broker = None


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    """Signal a child's process group (it leads one of its own), if it still runs."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)
