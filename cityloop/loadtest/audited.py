"""`cityloop audit` as a child process, the way a bench measures it: its verdict, its wall
seconds and its peak memory (the child's own, not the bench's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def audit_in_child(env: Mapping[str, str], wait_s: float, logs: Path) -> dict[str, Any]:
    """`seconds`, `peak_rss_mb`, `exit_code`, and `report` (the printed JSON) or `error` (the
    end of its stderr). `logs` keeps audit.json and audit.log."""
    began = time.monotonic()
    out_path, err_path = logs / "audit.json", logs / "audit.log"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen(  # noqa: S603 - our own CLI, our own arguments
            [sys.executable, "-m", "cityloop", "audit", "--wait-s", f"{wait_s:g}"],
            env=dict(env),
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(child.pid, 0)  # the child's own peak memory, as it ends
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    result: dict[str, Any] = {
        "seconds": round(time.monotonic() - began, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit_code": child.returncode,
    }
    try:
        result["report"] = json.loads(out_path.read_text())
    except ValueError:
        result["error"] = err_path.read_text(errors="replace")[-3000:]
    return result
