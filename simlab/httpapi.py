"""A small threaded HTTPS server and router for the simulated APIs.

The standard library's ``http.server`` is used on purpose: PVE puts its error message in the HTTP
status line (``HTTP/1.1 400 Parameter verification failed.``) and clients such as proxmoxer read it
from there; ASGI servers only send the standard reason phrases.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["ApiError", "HttpApp", "Request", "Response", "Router", "serve"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: status code, the message for the status line, optional per-parameter errors."""

    def __init__(self, status: int, message: str, *, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


@dataclass(kw_only=True)
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    auth: Any = None

    def args(self) -> dict[str, str]:
        """Query parameters merged with the form body (PVE accepts both)."""
        return {**self.query, **self.form}

    def json(self) -> Any:
        """The body as JSON (raises a 400 for bad JSON)."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise ApiError(400, f"invalid JSON body: {exc}") from exc

    def cookie(self, name: str) -> str | None:
        """A cookie's value."""
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return unquote(value)
        return None


@dataclass(kw_only=True)
class Response:
    """A raw answer (when the app's default envelope is not wanted)."""

    status: int = 200
    reason: str | None = None
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"


Handler = Callable[[Request], Any]


class Router:
    """Maps ``(method, path pattern)`` to handlers; ``{name}`` segments become ``request.params``."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.patterns: list[tuple[str, str]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register a handler; ``{upid}`` matches anything up to the next ``/``."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        self.routes.append((method, re.compile(regex), handler))
        self.patterns.append((method, pattern))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add`."""

        def deco(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn

        return deco

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler for a request, or None (unknown path or method)."""
        for m, regex, handler in self.routes:
            found = regex.match(path)
            if found and m == method:
                return handler, {k: unquote(v) for k, v in found.groupdict().items()}
        return None


class HttpApp:
    """An API: turns a request into a response (subclasses define envelopes and auth)."""

    name = "app"

    def handle(self, request: Request) -> Response:  # pragma: no cover - overridden
        """Answer one request."""
        raise NotImplementedError


def _handler_class(app: HttpApp) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = app.name

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", app.name, format % args)

        def _dispatch(self) -> None:
            if getattr(self.server, "stopping", False):
                # Shutting down: drop kept-alive connections too, as a server that goes away does.
                self.close_connection = True
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            ctype = self.headers.get("Content-Type", "")
            form: dict[str, str] = {}
            if body and "application/x-www-form-urlencoded" in ctype:
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            request = Request(
                method=self.command,
                path=split.path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                form=form,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = app.handle(request)
            except Exception:  # boundary: a simulator bug must answer 500, not drop the connection
                log.exception("%s: %s %s failed", app.name, self.command, self.path)
                response = Response(status=500, reason="internal simulator error", body=b"")
            self.send_response(response.status, response.reason)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    return _Handler


def serve(
    app: HttpApp, *, host: str, port: int, cert_file: Path, key_file: Path
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``app`` over TLS in a background thread; returns the server (call ``shutdown()``)."""
    server = ThreadingHTTPServer((host, port), _handler_class(app))
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert_file), str(key_file))
    # The handshake happens lazily in the handler thread, so one slow client cannot block accept().
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name=f"{app.name}:{port}", daemon=True)
    thread.start()
    return server, thread
