"""`cityloop up` started as a user or a service manager starts it, and every process it started
found again by a marker in their environment, whichever session or group they are in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from cityloop.broker import free_port, port_open
from tests.conftest import TEST_SECRET, bearer
from tests.e2e.test_up_demo import processes_with_env
from topology import tiny_topology_path

READY_LINE = "Ctrl-C stops everything"


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    output_file: Path
    marker: str
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['CITYLOOP_API_PORT']}"

    @property
    def ports(self) -> dict[str, int]:
        return {
            name: int(self.env[f"CITYLOOP_{name.upper()}_PORT"])
            for name in ("broker", "api", "worker_metrics")
        }

    def output(self) -> str:
        return self.output_file.read_text(errors="replace")

    def log(self, role: str) -> str:
        path = Path(self.env["CITYLOOP_DATA_DIR"]) / "logs" / f"{role}.log"
        return path.read_text(errors="replace")

    def processes(self) -> list[int]:
        """Every live process `up` started, and `up` itself while it runs."""
        return processes_with_env(self.marker)

    def children(self) -> list[int]:
        return [pid for pid in self.processes() if pid != self.process.pid]

    def wait_gone(self, timeout_s: float) -> list[int]:
        """Wait until no process of this `up` is left; those still there after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def open_ports(self) -> list[str]:
        """The ports of this `up` something still listens on, but for one that another process
        of the machine listens on now: a port `free_port` gave this test is free again once
        `up` is gone, and a test running beside this one may have been given it since."""
        return [
            name
            for name, port in self.ports.items()
            if port_open("127.0.0.1", port) and not self._taken_by_another(port)
        ]

    def _taken_by_another(self, port: int) -> bool:
        owners = _listeners(port)
        return bool(owners) and not set(owners) & set(self.processes())

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        """Signal `up` alone (as a service manager does) and wait for it to exit."""
        self.process.send_signal(signum)
        return self.process.wait(timeout_s)

    def kill_everything(self) -> None:
        """The test's own cleanup, whatever happened: SIGKILL to every process left."""
        if self.process.poll() is None:
            self.process.kill()
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def act(self, case_id: str, action: dict[str, object], role: str, scope: str) -> str:
        """Post a command and wait for its outcome; the outcome's state (or the refusal)."""
        headers = bearer(role, scope)
        posted = httpx.post(
            f"{self.api_url}/v1/cases/{case_id}/actions", json=action, headers=headers, timeout=10
        )
        if posted.status_code != 202:
            return f"{posted.status_code}: {posted.text}"
        answer = httpx.get(
            self.api_url + posted.json()["status_url"],
            params={"wait": 10},
            headers=headers,
            timeout=15,
        ).json()
        return str(answer["state"])


def start_up(
    workdir: Path,
    *args: str,
    extra_env: dict[str, str] | None = None,
    ports_of: Up | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout_s: float = 120,
) -> Up:
    """`cityloop up` in `workdir` (its data in `workdir/data`), on the tiny topology with an
    external clock, in a session of its own; returns once it printed that it is up. `ports_of`:
    an earlier `up` whose ports and data directory this one takes (a restart)."""
    marker = uuid.uuid4().hex
    if ports_of is not None:
        env = {**ports_of.env, "CITYLOOP_E2E_MARKER": marker}
    else:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("KAFKA_BOOTSTRAP_SERVERS", "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS")
        }
        env.update(
            {
                "CITYLOOP_BROKER_PORT": str(free_port()),
                "CITYLOOP_API_PORT": str(free_port()),
                "CITYLOOP_WORKER_METRICS_PORT": str(free_port()),
                "CITYLOOP_DATA_DIR": str(workdir / "data"),
                "CITYLOOP_TOPOLOGY_FILE": str(tiny_topology_path()),
                "CITYLOOP_CLOCK": "external",
                "CITYLOOP_JWT_SECRET": TEST_SECRET,
                "CITYLOOP_E2E_MARKER": marker,
            }
        )
    env.update(extra_env or {})
    output_file = workdir / f"up-{marker[:8]}.out"
    with output_file.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityloop", "up", *args],
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    up = Up(process, output_file, marker, env)
    deadline = time.monotonic() + timeout_s
    while READY_LINE not in up.output():
        if process.poll() is not None or time.monotonic() > deadline:
            up.kill_everything()
            raise AssertionError(f"up did not come up:\n{up.output()[-3000:]}")
        time.sleep(0.2)
    return up


def _listening_inodes(port: int) -> set[str]:
    """The socket inodes listening on `port` (TCP, v4 and v6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def _listeners(port: int) -> list[int]:
    """The processes holding a socket that listens on `port`."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    owners = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                owners.append(int(entry.name))
        except OSError:
            continue
    return owners
