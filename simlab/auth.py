"""Authentication as PVE and PBS do it: tickets with a CSRF token, or API tokens.

Tickets are ``PVE:<user>:<hex epoch>::<signature>`` (``PBS:`` for PBS) signed with a key derived from
the lab's secrets, so they survive a restart of the simulator like real tickets survive a pveproxy
restart. Failed logins wait like the real servers (about 3 s) before answering 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from simlab import clock
from simlab.httpapi import ApiError, Request

__all__ = ["Authenticator", "Principal"]

TICKET_LIFETIME = 7200


@dataclass(kw_only=True, frozen=True)
class Principal:
    """Who made a request: the user, and the token id for API-token requests."""

    user: str
    token: str | None = None

    @property
    def authid(self) -> str:
        """``user@realm`` or ``user@realm!token``, as written into UPIDs."""
        return f"{self.user}!{self.token}" if self.token else self.user


class Authenticator:
    """Checks the credentials of one service (``PVE`` or ``PBS``) against the lab's secrets."""

    def __init__(self, service: Literal["PVE", "PBS"], creds: dict[str, Any], *, fail_delay: float) -> None:
        self.service = service
        self.creds = creds
        self.fail_delay = fail_delay
        self._key = hashlib.sha256(f"{service}:{creds['token_secret']}:{creds['password']}".encode()).digest()

    # --- tickets -------------------------------------------------------------------------------
    def _sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self._key, text.encode(), hashlib.sha256).digest()).decode().rstrip("=")

    def issue(self, user: str, now: float | None = None) -> dict[str, str]:
        """A fresh ticket and CSRF token for ``user``."""
        stamp = f"{int(now or clock.now()):08X}"
        plain = f"{self.service}:{user}:{stamp}"
        return {
            "username": user,
            "ticket": f"{plain}::{self._sign(plain)}",
            "CSRFPreventionToken": f"{stamp}:{self._sign(f'{stamp}:{user}')}",
        }

    def _ticket_user(self, ticket: str) -> str | None:
        plain, sep, sig = ticket.partition("::")
        parts = plain.split(":")
        if not sep or len(parts) != 3 or parts[0] != self.service:
            return None
        if not hmac.compare_digest(self._sign(plain), sig):
            return None
        try:
            age = clock.now() - int(parts[2], 16)
        except ValueError:
            return None
        return parts[1] if -300 < age < TICKET_LIFETIME else None

    def login(self, request: Request) -> dict[str, str]:
        """``POST /access/ticket``: password (or a still-valid ticket) for a ticket."""
        args = request.args()
        username = args.get("username", "")
        if "@" not in username and args.get("realm"):
            username = f"{username}@{args['realm']}"
        password = args.get("password", "")
        if not username or not password:
            missing = {
                k: "property is missing and it is not optional" for k in ("username", "password") if not args.get(k)
            }
            raise ApiError(400, "Parameter verification failed.", errors=missing)
        ok = username == self.creds["user"] and hmac.compare_digest(password, self.creds["password"])
        if not ok and self._ticket_user(password) == username:
            ok = True  # ticket renewal: the old ticket is the password
        if not ok:
            time.sleep(self.fail_delay)
            raise ApiError(401, "authentication failure")
        return self.issue(username)

    # --- request authentication ------------------------------------------------------------------
    def authenticate(self, request: Request) -> Principal:
        """The principal of a request, or a 401 with the reason in the status line."""
        header = request.headers.get("authorization", "")
        cookie_name = f"{self.service}AuthCookie"
        ticket = request.cookie(cookie_name)
        if ticket is None and header.startswith(f"{cookie_name}="):
            ticket = unquote(header.split("=", 1)[1])
        if ticket is not None:
            user = self._ticket_user(ticket)
            if user is None:
                self._fail("Authentication failed!")
            if request.method != "GET":
                csrf = request.headers.get("csrfpreventiontoken", "")
                stamp = csrf.split(":", 1)[0]
                if not hmac.compare_digest(csrf, f"{stamp}:{self._sign(f'{stamp}:{user}')}"):
                    self._fail("Permission denied - invalid csrf token")
            return Principal(user=str(user))
        prefix = f"{self.service}APIToken"
        if header.startswith(prefix):
            value = unquote(header[len(prefix) :].lstrip("= "))
            sep = "=" if self.service == "PVE" else ":"
            tokenid, _, secret = value.partition(sep)
            user, _, token_name = tokenid.partition("!")
            if tokenid == self.creds["token_id"] and hmac.compare_digest(secret, self.creds["token_secret"]):
                return Principal(user=user, token=token_name)
            self._fail("Authentication failed!")
        self._fail("No ticket")
        raise AssertionError("unreachable")

    def _fail(self, reason: str) -> None:
        time.sleep(self.fail_delay)
        raise ApiError(401, reason)
