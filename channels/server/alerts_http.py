"""``POST /alerts/alertmanager``: Alertmanager's webhook receiver.

Authenticated the ways Alertmanager's ``http_config`` can send: a bearer token (``alerts.webhook_token``) or
basic auth (``alerts.webhook_username`` / ``webhook_password``); anything else is 401 before the body is read.
With neither configured the endpoint is off (404). A body that is not a version-4 payload is 400 and nothing
is stored. A valid one is acknowledged at once (Alertmanager's timeout is short) and handled in the order it
came, one at a time, in a worker thread: incidents, investigations, Slack.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from agent.incidents.alertmanager import WebhookPayload
from channels.server.state import ServerState
from core.config import AlertsSettings
from policies.guard import Caller

__all__ = ["AlertIntake", "router"]

log = logging.getLogger(__name__)
router = APIRouter()

MAX_BODY = 4 * 1024 * 1024  # a notification of thousands of alerts is well under this


def _authorised(settings: AlertsSettings, header: str) -> bool:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and settings.webhook_token is not None:
        return hmac.compare_digest(value.encode(), settings.webhook_token.get_secret_value().encode())
    if scheme.lower() == "basic" and settings.webhook_username and settings.webhook_password is not None:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), settings.webhook_username.encode()) and hmac.compare_digest(
            password.encode(), settings.webhook_password.get_secret_value().encode()
        )
    return False


def _problems(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


class AlertIntake:
    """Validates notifications and hands them to the incident desk, one at a time, after answering."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.settings = state.settings.alerts
        self.enabled = self.settings.webhook_token is not None or (
            bool(self.settings.webhook_username) and self.settings.webhook_password is not None
        )
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labops-alerts")

    def handle(self, payload: WebhookPayload, caller: Caller) -> None:
        """Record one notification (in the worker thread)."""
        try:
            self.state.services.incidents.alert(payload, caller=caller)
        except Exception:  # boundary: a notification that fails is logged; Alertmanager re-sends the group
            log.exception("handling Alertmanager notification %s failed", payload.groupKey[:200])
            self.state.metrics.alerts_received.labels("failed").inc()

    def close(self) -> None:
        """Finish the notifications received, then stop."""
        self.worker.shutdown(wait=True)


def _reply(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer, Basic realm="labops"'} if status == 401 else None
    return JSONResponse({"error" if status >= 400 else "status": message, **extra}, status_code=status,
                        headers=headers)  # fmt: skip


@router.post("/alerts/alertmanager")
async def alertmanager(request: Request) -> JSONResponse:
    """One notification of one alert group."""
    intake: AlertIntake = request.app.state.alerts
    state: ServerState = request.app.state.labops
    if not intake.enabled:
        return _reply(404, "the Alertmanager webhook is off: set alerts.webhook_token (or webhook_username and "
                           "webhook_password)")  # fmt: skip
    if not _authorised(intake.settings, request.headers.get("authorization", "")):
        state.metrics.alerts_received.labels("unauthorised").inc()
        log.warning("refused an Alertmanager notification without valid credentials from %s",
                    request.client.host if request.client else "?")  # fmt: skip
        return _reply(401, "missing or wrong credentials: send alerts.webhook_token as a bearer token, or basic auth")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _reply(413, f"notification larger than {MAX_BODY // 1024 // 1024} MiB: lower max_alerts in the receiver")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        state.metrics.alerts_received.labels("malformed").inc()
        return _reply(400, "the body is not JSON: send Alertmanager's webhook payload (version 4)")
    try:
        payload = WebhookPayload.model_validate(body)
    except (ValidationError, RecursionError) as exc:
        state.metrics.alerts_received.labels("malformed").inc()
        detail = _problems(exc) if isinstance(exc, ValidationError) else "nested too deeply"
        return _reply(400, f"not an Alertmanager version 4 payload: {detail}")
    caller = Caller(user="alertmanager", channel="alertmanager", request_text=f"notification {payload.groupKey}"[:500],
                    request_id=getattr(request.state, "request_id", None),
                    origin={"remote": request.client.host if request.client else None, "receiver": payload.receiver,
                            "external_url": payload.externalURL[:200], "alerts": len(payload.alerts)})  # fmt: skip
    intake.worker.submit(intake.handle, payload, caller)
    state.metrics.alerts_received.labels("accepted").inc()
    return _reply(200, "accepted", alerts=len(payload.alerts))
