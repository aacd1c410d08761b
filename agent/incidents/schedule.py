"""Running the enabled watchers on their intervals, in a background thread of ``labops serve``.

Each watcher checks once at start and then every ``alerts.watchers.<name>.interval_s`` seconds. Replicas run
their watchers independently: the store makes one incident of a problem however many replicas see it, and one
Slack message of it however many try to post.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.incidents.desk import CycleReport, IncidentDesk
from agent.incidents.watchers import WATCHERS

__all__ = ["Watching"]

log = logging.getLogger(__name__)


class Watching:
    """A thread running the enabled watchers until :meth:`stop`."""

    def __init__(self, desk: IncidentDesk, *, on_cycle: Callable[[CycleReport], None] | None = None) -> None:
        self.desk = desk
        self.on_cycle = on_cycle
        settings = desk.settings.alerts.watchers
        self.intervals = {w.name: getattr(settings, w.name).interval_s for w in WATCHERS
                          if getattr(settings, w.name).enabled}  # fmt: skip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> list[str]:
        """The watchers this thread runs."""
        return sorted(self.intervals)

    def start(self) -> None:
        """Start the thread (nothing happens when no watcher is enabled)."""
        if not self.intervals or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="labops-watchers", daemon=True)
        self._thread.start()
        log.info("watchers running: %s", ", ".join(f"{n} every {s:g} s" for n, s in sorted(self.intervals.items())))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the check in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        due = dict.fromkeys(self.intervals, time.monotonic())
        while not self._stop.is_set():
            now = time.monotonic()
            for name in sorted(due, key=lambda n: due[n]):
                if due[name] > now or self._stop.is_set():
                    continue
                try:
                    report = self.desk.run_cycle([name])[0]
                except Exception:  # boundary: one failed cycle is logged; the watcher runs again next interval
                    log.exception("watcher %s failed", name)
                else:
                    if self.on_cycle is not None:
                        self.on_cycle(report)
                due[name] = time.monotonic() + self.intervals[name]
            self._stop.wait(max(0.05, min(due.values()) - time.monotonic()))
