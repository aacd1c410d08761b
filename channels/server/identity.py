"""Who an HTTP request speaks for: the API key's owner, or the user a trusted front-end forwards.

OpenWebUI with ``ENABLE_FORWARD_USER_INFO_HEADERS`` sends ``X-OpenWebUI-User-Id``, ``-Name`` (URL-quoted),
``-Email`` and ``-Role``. Only a key created with ``--trusted-frontend`` may speak for them; they are
mapped to lab users by ``server.forwarded_users`` (e-mail, id or name); an unmapped forwarded user acts
under their e-mail, as an unknown user. Forwarded headers on any other key are ignored. With
``server.forwarded_jwt_secret`` set (OpenWebUI's ``FORWARD_USER_INFO_HEADER_JWT_SECRET``), only the signed
``X-OpenWebUI-User-Jwt`` counts: unsigned headers could be set by anyone who can reach the front-end's key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from core.config import Settings
from policies.apikeys import ApiKey, ApiKeys
from policies.identity import valid_user_name

__all__ = ["Identified", "identify", "verify_hs256"]


@dataclass(kw_only=True, frozen=True)
class Identified:
    """The user a request acts as, and through which key."""

    user: str
    key: ApiKey
    forwarded: bool
    chat_id: str | None


def _header(headers: dict[str, str], name: str) -> str:
    return headers.get(name.lower(), "").strip()


def identify(settings: Settings, keys: ApiKeys, headers: dict[str, str]) -> Identified | None:
    """The identity of a request with lower-cased ``headers``, or None when the bearer key is missing or wrong."""
    auth = _header(headers, "authorization")
    if not auth.lower().startswith("bearer "):
        return None
    key = keys.check(auth[7:].strip())
    if key is None:
        return None
    chat_id = _header(headers, "x-openwebui-chat-id") or None
    if chat_id is not None:
        chat_id = re.sub(r"[^A-Za-z0-9_.-]", "", chat_id)[:80] or None
    if not key.trusted_frontend:
        return Identified(user=key.user, key=key, forwarded=False, chat_id=chat_id)
    forwarded = _forwarded(settings, headers)
    if forwarded is None:
        return Identified(user=key.user, key=key, forwarded=False, chat_id=chat_id)
    email, user_id, name = forwarded
    mapping = settings.server.forwarded_users
    mapped = next((mapping[v] for v in (email, user_id, name) if v and v in mapping), None)
    fallback = f"openwebui-{re.sub(r'[^A-Za-z0-9_.-]', '', user_id)[:40]}"
    user = mapped or (email if valid_user_name(email) else fallback)
    return Identified(user=user, key=key, forwarded=True, chat_id=chat_id)


def _forwarded(settings: Settings, headers: dict[str, str]) -> tuple[str, str, str] | None:
    """(email, id, name) the front-end forwards, or None when it forwards nobody (or a bad token)."""
    secret = settings.server.forwarded_jwt_secret
    if secret is not None:
        token = _header(headers, settings.server.forwarded_jwt_header)
        claims = verify_hs256(token, secret.get_secret_value()) if token else None
        if claims is None:
            return None
        return str(claims.get("email") or ""), str(claims.get("sub") or ""), str(claims.get("name") or "")
    email = _header(headers, "x-openwebui-user-email")
    user_id = _header(headers, "x-openwebui-user-id")
    name = unquote(_header(headers, "x-openwebui-user-name"))
    if not (email or user_id or name):
        return None
    return email, user_id, name


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
    if not isinstance(exp, int | float) or exp + leeway_s < now:
        return None
    if claims.get("iss", "open-webui") != "open-webui":
        return None
    return claims
