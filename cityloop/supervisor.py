"""Runs broker, worker and API as one unit for `cityloop up`, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.console import Console
from sqlalchemy.engine import make_url

from cityloop.broker import EmbeddedBroker
from cityloop.errors import CityloopError
from cityloop.session_secret import new_session_secret, write_session_secret
from cityloop.settings import Settings

if TYPE_CHECKING:
    from handlers.access import Principal

DEFAULT_DATABASE = Settings.model_fields["database_url"].default


class Supervisor:
    def __init__(self, settings: Settings, console: Console):
        self.settings = settings
        self.console = console
        self.broker: EmbeddedBroker | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False
        # the API needs a signing secret; without one configured, this session makes its own
        self.jwt_secret = settings.jwt_secret.get_secret_value() or new_session_secret()

    def start_all(self, ready_timeout_s: float = 60.0) -> None:
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._keep_secret()
        if self.settings.embedded_broker:
            self.broker = EmbeddedBroker(
                self.settings.broker_host,
                self.settings.broker_port,
                logs / "broker.log",
                own_session=True,  # like the worker and the API: Ctrl-C is for `up` to handle
            ).start()
            self.console.print(f"embedded broker at {self.broker.bootstrap} (memory storage)")
            self._reset_default_database()
        for role in ("worker", "api"):
            log_file = open(logs / f"{role}.log", "ab")  # noqa: SIM115 - the child owns it
            self.children[role] = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "cityloop", role],
                env={**os.environ, "CITYLOOP_JWT_SECRET": self.jwt_secret},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
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

    def _reset_default_database(self) -> None:
        """The embedded broker forgets everything on restart; a read model left from an earlier
        run would show cases nothing can act on, so the default SQLite file starts fresh."""
        if self.settings.database_url != DEFAULT_DATABASE:
            return
        from api.db import remove_sqlite_file

        database = make_url(self.settings.database_url).database
        if database and remove_sqlite_file(Path(database)):
            self.console.print(f"fresh read model: removed {database} from an earlier run")

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
        """Block until Ctrl-C, SIGTERM, or a child dies."""

        def _stop(signum: int, frame: object) -> None:
            self._stopping = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not self._stopping:
                for role, child in self.children.items():
                    if child.poll() is not None:
                        self.console.print(f"[red]the {role} exited ({child.returncode})[/]")
                        return
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.console.print("stopping")

    def stop_all(self, timeout_s: float = 15.0) -> None:
        for child in self.children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.children.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
