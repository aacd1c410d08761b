"""Running the service: request ids, JSON logs, per-route metrics, ``/healthz``, ``/readyz``, ``/metrics``.

Every request gets an id (a sane ``X-Request-ID`` from the proxy is kept, else a new one); it is in the
response header, on every log line written while the request is served (worker threads included) and in
the audit entries of the tool calls the request caused.

``/readyz`` answers 200 only when what the service itself needs answers: the shared store (approvals,
audit, checkpoints), the model server with the configured model, and the documentation index. The lab's
backends (PVE, PBS, Ray, PostgreSQL) are not part of it: when one is down the agent says so in its answer,
and taking the service out of rotation would not bring it back.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from channels.server.state import ServerState
from core.config import Settings
from core.endpoints import milvus_endpoint, ollama_url
from core.errors import LabOpsError
from core.store import Database

__all__ = ["JsonFormatter", "configure_logging", "install_middleware", "request_id_var", "router"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("labops_request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,80}$")

router = APIRouter()
ACCESS_LOG = "labops.access"
access = logging.getLogger(ACCESS_LOG)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            entry.update(http)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: Settings, *, json_logs: bool = True) -> None:
    """Send the service's logs to stderr, one JSON object per line (``--plain-logs`` for people)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # One line per request and the service's start and stop, whatever log_level says about the rest.
    for always in (ACCESS_LOG, "labops.serve"):
        logging.getLogger(always).setLevel(min(logging.INFO, logging.getLevelName(settings.log_level)))


def install_middleware(app: FastAPI) -> None:
    """Request ids and per-route metrics around every request."""

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get("x-request-id", "")
        request_id = given if _SANE_ID.match(given) else "req_" + uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            state: ServerState | None = getattr(request.app.state, "labops", None)
            if state is not None:
                state.metrics.requests.labels(path, request.method, str(status)).inc()
                state.metrics.latency.labels(path, request.method).observe(elapsed)
            access.info(
                "%s %s %s %.0f ms",
                request.method,
                request.url.path,
                status,
                elapsed * 1000,
                extra={"http": {"method": request.method, "path": request.url.path, "status": status,
                                "ms": round(elapsed * 1000, 1),
                                "client": request.client.host if request.client else None}},
            )  # fmt: skip
            request_id_var.reset(token)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check_store(settings: Settings) -> str:
    db = Database.from_settings(settings)
    with db.session() as s:
        s.execute("SELECT 1").fetchone()
    return db.where


def _check_model(state: ServerState) -> str:
    """The model server the agent talks to (not a fresh lookup: that said ready while every chat got 503).

    When it does not answer and its address came from the embedded lab, the agent looks it up again first.
    """
    try:
        return _check_model_at(state.settings, state.agent.model_info.get("url"))
    except (LabOpsError, httpx.HTTPError, OSError, ValueError):
        if not state.agent.refresh_model():
            raise
    return _check_model_at(state.settings, state.agent.model_info.get("url"))


def _check_model_at(settings: Settings, url: str | None) -> str:
    llm = settings.llm
    if llm.provider == "scripted":
        return "scripted model (tests)"
    if llm.provider == "openai":
        if not llm.openai_base_url:
            raise LabOpsError("llm.openai_base_url is unset")
        headers = {"Authorization": f"Bearer {llm.openai_api_key.get_secret_value()}"} if llm.openai_api_key else {}
        r = httpx.get(llm.openai_base_url.rstrip("/") + "/models", headers=headers, timeout=5)
        r.raise_for_status()
        names = {m.get("id") for m in r.json().get("data", [])}
    else:
        url = url or ollama_url(settings)
        r = httpx.get(url + "/api/tags", timeout=5)
        r.raise_for_status()
        names = {m.get("name") for m in r.json().get("models", [])} | {
            m.get("model") for m in r.json().get("models", [])
        }
    if llm.model not in names:
        raise LabOpsError(
            f"the model server does not have {llm.model!r} (llm.model); it has {sorted(n for n in names if n)}"
        )
    return f"{llm.provider}: {llm.model} at {url}" if llm.provider == "ollama" else f"{llm.provider}: {llm.model}"


def _check_docs(state: ServerState) -> str:
    """The documentation index the agent searches answers and holds the lab's pages."""
    uri, _token = milvus_endpoint(state.settings)
    if "://" in uri:
        parsed = urlsplit(uri)
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or 19530), timeout=5):
            pass
    elif not Path(uri).exists():
        raise LabOpsError(f"no documentation index at {uri}: run `labops ingest knowledge/docs` (or `labops lab up`)")
    docs = state.agent.docs
    chunks = docs.chunks() if docs is not None and hasattr(docs, "chunks") else None
    if chunks == 0:
        raise LabOpsError(f"the documentation index at {uri} is empty: run `labops ingest knowledge/docs`")
    return uri if chunks is None else f"{uri}: {chunks} chunks"


@router.get("/readyz")
async def readyz(request: Request) -> Any:
    """200 when the store, the model server and the docs index answer; 503 naming what does not."""
    state: ServerState = request.app.state.labops
    checks: dict[str, dict[str, Any]] = {}
    parts: tuple[tuple[str, Callable[[], str]], ...] = (
        ("store", lambda: _check_store(state.settings)),
        ("model", lambda: _check_model(state)),
        ("docs", lambda: _check_docs(state)),
    )
    for name, check in parts:
        try:
            checks[name] = {"ok": True, "detail": await run_in_threadpool(check)}
        except (LabOpsError, httpx.HTTPError, OSError, ValueError) as exc:
            checks[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    state: ServerState = request.app.state.labops
    state.metrics.queue.set(state.gate.admitted)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
