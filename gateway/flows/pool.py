"""Worker processes of a flow: spawned (not forked: the parent has threads, the Kafka clients' and
faust's, that a fork would copy mid-lock), each exiting when its parent is gone (a SIGKILLed parent
cannot shut its pool down). Used by the ingest (normalising) and the sink runtime (rendering)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["exit_with_parent", "spawn_pool"]


def exit_with_parent(parent: int) -> None:
    """In a worker process: exit as soon as process `parent` is gone (checked every second)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="gp-parent-watch", daemon=True).start()


def spawn_pool(processes: int, initializer: Callable[..., None], *initargs: Any) -> ProcessPoolExecutor:
    """`processes` spawned processes, each set up by `initializer(os.getpid() of the parent, *initargs)`
    (which should call exit_with_parent with it)."""
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=(os.getpid(), *initargs),
    )
