"""Who an HTTP request speaks for: the API key's owner, or the user a trusted front-end forwards.

OpenWebUI with ``ENABLE_FORWARD_USER_INFO_HEADERS`` sends ``X-OpenWebUI-User-Id``, ``-Name`` (URL-quoted),
``-Email`` and ``-Role``. Only a key created with ``--trusted-frontend`` may speak for them; forwarded headers
on any other key are ignored (the key's owner acts). A forwarded user is mapped to a lab user by
``server.forwarded_users`` through a *stable* identifier only: the e-mail or OpenWebUI's user id. The display
name is recorded and shown, never trusted: every OpenWebUI user can edit theirs. An unmapped forwarded user
acts as ``openwebui-<e-mail or id>``, a name no lab user has, so they are unknown (read-only) whatever their
e-mail says.

With ``server.forwarded_jwt_secret`` set (OpenWebUI's ``FORWARD_USER_INFO_HEADER_JWT_SECRET``), OpenWebUI
sends one signed ``X-OpenWebUI-User-Jwt`` instead of the plain headers, and only that counts: a request
carrying a token that does not verify, or plain user headers without a token, is refused (401) and the
refusal is audited, since anyone who can reach the front-end's key could set plain headers.

Every identification carries ``origin``: the channel's facts about who asked (key id and owner, the forwarded
identity as received, whether it was signed, how it was mapped), which the guard writes into each audit entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from core.config import Settings
from policies.apikeys import ApiKey, ApiKeys
from policies.identity import valid_user_name

__all__ = ["Identified", "forwarded_user_name", "identify", "verify_hs256"]

FORWARDED_PREFIX = "openwebui-"


@dataclass(kw_only=True, frozen=True)
class Identified:
    """The user a request acts as, through which key, and what it said about itself.

    Attributes:
        refused: why the forwarded identity was refused (the request is answered 401); None when accepted.
        origin: JSON-safe facts for the audit log (key, forwarded identity as received, signed or not).
    """

    user: str
    key: ApiKey
    forwarded: bool
    chat_id: str | None
    origin: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None


def _header(headers: dict[str, str], name: str) -> str:
    return headers.get(name.lower(), "").strip()


def _printable(value: str, limit: int = 200) -> str:
    """A received value as it may be recorded: control and format characters shown as escapes, bounded."""
    out = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in value)
    return out[:limit]


def forwarded_user_name(email: str, user_id: str, known: Callable[[str], bool]) -> str:
    """The lab user name of an unmapped forwarded user: ``openwebui-<e-mail or id>``, never a known user."""
    stable = email.lower() or user_id
    cleaned = re.sub(r"[^A-Za-z0-9._@-]", "", stable)
    name = FORWARDED_PREFIX + cleaned
    if not cleaned or len(name) > 64 or not valid_user_name(name) or known(name):
        # Too long, empty after cleaning, or (an operator's odd naming) a lab user's name: a digest instead.
        name = FORWARDED_PREFIX + hashlib.sha256(stable.encode()).hexdigest()[:20]
    return name


def identify(
    settings: Settings,
    keys: ApiKeys,
    headers: dict[str, str],
    *,
    known: Callable[[str], bool] = lambda _name: False,
) -> Identified | None:
    """The identity of a request with lower-cased ``headers``, or None when the bearer key is missing or wrong.

    ``known`` says whether a name is a lab user (so an unmapped forwarded user can never become one).
    """
    auth = _header(headers, "authorization")
    if not auth.lower().startswith("bearer "):
        return None
    key = keys.check(auth[7:].strip())
    if key is None:
        return None
    chat_id = _header(headers, "x-openwebui-chat-id") or None
    if chat_id is not None:
        chat_id = re.sub(r"[^A-Za-z0-9_.-]", "", chat_id)[:80] or None
    # Named "api_client", not "key": the audit log redacts fields whose names look like secrets.
    client: dict[str, Any] = {"id": key.id, "name": key.name, "owner": key.user, "trusted_frontend": False}
    origin: dict[str, Any] = {"api_client": client}
    if not key.trusted_frontend:
        ignored = _plain_headers(headers)
        if any(ignored):
            origin["forwarded_ignored"] = _received(*ignored, signed=False)
        return Identified(user=key.user, key=key, forwarded=False, chat_id=chat_id, origin=origin)
    client["trusted_frontend"] = True
    forwarded = _forwarded(settings, headers)
    if isinstance(forwarded, str):
        return Identified(user=key.user, key=key, forwarded=False, chat_id=chat_id, origin=origin, refused=forwarded)
    if forwarded is None:
        return Identified(user=key.user, key=key, forwarded=False, chat_id=chat_id, origin=origin)
    email, user_id, name, signed = forwarded
    origin["forwarded"] = _received(email, user_id, name, signed=signed)
    if not (email or user_id):
        # A display name alone identifies nobody: the front-end's own account acts.
        origin["mapped_by"] = "none (no e-mail or id forwarded; the display name is not an identity)"
        return Identified(user=key.user, key=key, forwarded=False, chat_id=chat_id, origin=origin)
    mapping = {k.strip().lower() if "@" in k else k.strip(): v for k, v in settings.server.forwarded_users.items()}
    mapped: str | None = None
    if email and email.lower() in mapping:
        mapped, origin["mapped_by"] = mapping[email.lower()], "email"
    elif user_id and user_id in mapping:
        mapped, origin["mapped_by"] = mapping[user_id], "id"
    if mapped is None:
        origin["mapped_by"] = "unmapped (unknown user)"
        mapped = forwarded_user_name(email, user_id, known)
    return Identified(user=mapped, key=key, forwarded=True, chat_id=chat_id, origin=origin)


def _received(email: str, user_id: str, name: str, *, signed: bool) -> dict[str, Any]:
    return {
        "email": _printable(email),
        "id": _printable(user_id),
        "name": _printable(name),
        "signed": signed,
    }


def _plain_headers(headers: dict[str, str]) -> tuple[str, str, str]:
    email = _header(headers, "x-openwebui-user-email")
    user_id = _header(headers, "x-openwebui-user-id")
    name = unquote(_header(headers, "x-openwebui-user-name"))
    return email, user_id, name


def _forwarded(settings: Settings, headers: dict[str, str]) -> tuple[str, str, str, bool] | str | None:
    """(email, id, name, signed) the front-end forwards; None when it forwards nobody; a refusal reason."""
    secret = settings.server.forwarded_jwt_secret
    header = settings.server.forwarded_jwt_header
    if secret is not None:
        token = _header(headers, header)
        if not token:
            if any(_plain_headers(headers)):
                return (
                    f"the front-end sent unsigned user headers, but server.forwarded_jwt_secret is set, so only a "
                    f"signed {header} counts: set FORWARD_USER_INFO_HEADER_JWT_SECRET on OpenWebUI to the same "
                    "value, or unset server.forwarded_jwt_secret"
                )
            return None
        claims = verify_hs256(token, secret.get_secret_value())
        if claims is None:
            return (
                f"the forwarded user token ({header}) is not a valid HS256 token signed with "
                "server.forwarded_jwt_secret (wrong secret, expired, or altered)"
            )
        return (
            _claim(claims.get("email")),
            _claim(claims.get("sub")),
            _claim(claims.get("name")),
            True,
        )
    email, user_id, name = _plain_headers(headers)
    if not (email or user_id or name):
        return None
    return email, user_id, name, False


def _claim(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_hs256(token: str, secret: str, *, now: float | None = None, leeway_s: float = 30.0) -> dict[str, Any] | None:
    """The claims of an HS256 JWT signed with ``secret``, unexpired and issued by OpenWebUI; else None."""
    try:
        head, body, signature = token.split(".")
        header = json.loads(_b64(head))
        claims = json.loads(_b64(body))
        given = _b64(signature)
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    expected = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        return None
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + leeway_s < now:
        return None
    if claims.get("iss", "open-webui") != "open-webui":
        return None
    return claims
