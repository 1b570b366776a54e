"""The tie between `cityloop up` and the processes it starts: they stop when `up` stops them, and
stop themselves when `up` dies without doing so (SIGKILL, the OOM killer).

Two ties, because either alone leaves something behind. The kernel's parent-death signal
(prctl PR_SET_PDEATHSIG, armed between fork and exec) reaches every child, the broker included,
the moment `up` dies; but a worker told to stop while its broker is gone retries the broker and
never ends. So the worker and the API also watch `up` themselves: once it is gone they give
themselves a grace period to stop, and then exit whatever they are doing."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

SUPERVISOR_PID = "CITYLOOP_SUPERVISOR_PID"
"""Set by `up` in its children's environment: the pid they stop with."""

ORPHAN_GRACE_S = 10.0
"""How long a child whose `up` died may take to stop before it exits regardless."""

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def child_setup(parent_pid: int) -> Callable[[], None]:
    """What a child of `up` runs between fork and exec (Popen's `preexec_fn`): the signals `up`
    may have inherited as ignored or blocked (`cityloop up &` from a script starts with SIGINT
    ignored, and exec keeps an ignored disposition) back to their defaults, and the
    parent-death signal armed. The signal arrives when the thread that forked the child ends,
    so children are started from `up`'s main thread only."""
    libc = ctypes.CDLL(None, use_errno=True)  # looked up before the fork, not inside the child

    def setup() -> None:
        for signum in _FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # `up` died before the signal was armed
            os._exit(1)

    return setup


def child_environment(parent_pid: int) -> dict[str, str]:
    return {SUPERVISOR_PID: str(parent_pid)}


def stop_with_supervisor(grace_s: float = ORPHAN_GRACE_S) -> threading.Thread | None:
    """In a worker or API started by `up`: watch `up` from a daemon thread; once it is gone (the
    parent-death signal has asked this process to stop by then), exit if still running after
    `grace_s`. Nothing when not started by `up`."""
    parent = os.environ.get(SUPERVISOR_PID)
    if not parent or not parent.isdigit():
        return None
    parent_pid = int(parent)
    if os.getppid() != parent_pid:  # gone already, before this process could watch it
        log.error("cityloop up (pid %s) is gone: exiting", parent_pid)
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        log.warning("cityloop up (pid %s) is gone: stopping within %.0fs", parent_pid, grace_s)
        time.sleep(grace_s)
        log.error("still running %.0fs after cityloop up died: exiting", grace_s)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)

    thread = threading.Thread(target=watch, name="cityloop-lifeline", daemon=True)
    thread.start()
    return thread
