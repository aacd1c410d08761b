"""A reply produced in a worker thread, read piece by piece (SSE) or whole.

The turn runs to its end even when the client goes away mid-stream: a tool call that started is finished,
recorded and its reply stored, instead of being cut off where the connection dropped. The worker holds a
running slot of the :class:`~channels.server.admission.TurnGate` the request was admitted to.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from channels.server.admission import TurnGate
from core.errors import LabOpsError

__all__ = ["Turn"]

log = logging.getLogger(__name__)

_END = object()


class Turn:
    """Run ``produce`` (yielding text pieces) in a thread; ``on_done(text, failed)`` runs when it ends."""

    def __init__(
        self,
        produce: Callable[[], Iterator[str]],
        *,
        gate: TurnGate | None,
        on_done: Callable[[str, bool], None],
        request_id: str | None = None,
    ) -> None:
        self._produce, self._gate, self._on_done = produce, gate, on_done
        self._queue: queue.Queue[Any] = queue.Queue()
        self.request_id = request_id
        self.failed = False
        self.error: LabOpsError | None = None
        self.text = ""
        # The request id (a context variable) follows the turn into its thread, and onto its log lines.
        context = contextvars.copy_context()
        self._worker = threading.Thread(target=context.run, args=(self._run,), name="labops-turn", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        pieces: list[str] = []
        try:
            if self._gate is not None:
                with self._gate.slot():
                    self._drain(pieces)
            else:
                self._drain(pieces)
        except LabOpsError as exc:
            self.error = exc
            pieces.append(f"Not done: {exc}")
            self._queue.put(pieces[-1])
        except Exception:  # boundary: a bug must end the reply with an error, not leave the client hanging
            log.exception("turn failed (request %s)", self.request_id)
            self.failed = True
            pieces.append(f"Not done: LabOps hit an internal error (request id {self.request_id}); it is logged.")
            self._queue.put(pieces[-1])
        finally:
            self.text = "".join(pieces)
            try:
                self._on_done(self.text, self.failed or self.error is not None)
            except Exception:
                log.exception("storing the reply failed (request %s)", self.request_id)
            self._queue.put(_END)

    def _drain(self, pieces: list[str]) -> None:
        for piece in self._produce():
            if piece:
                pieces.append(piece)
                self._queue.put(piece)

    def pieces(self) -> Iterator[str]:
        """The pieces as they come (blocks between them)."""
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield str(item)

    def wait(self) -> str:
        """The whole reply."""
        for _ in self.pieces():
            pass
        self._worker.join()
        return self.text
