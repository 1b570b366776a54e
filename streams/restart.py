"""The worker starting over in its own process (same pid, so whatever supervises it sees no
exit): the group joined afresh, the case book rebuilt, every record whose offset was not
committed read again. What the worker does when records it wrote may be gone."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

AFTER_TOPIC_LOSS = "--after-topic-loss"


def start_over(*, after_topic_loss: bool) -> NoReturn:
    """Run this worker command again in this process; `after_topic_loss` tells the new run to
    create the topics again and forget the committed offsets, which point into lost logs."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [arg for arg in sys.orig_argv if arg != AFTER_TOPIC_LOSS]
    if after_topic_loss:
        argv.append(AFTER_TOPIC_LOSS)
    os.execv(sys.executable, argv)  # noqa: S606 - ourselves, again
