"""The GPU node's Ollama API (``docs/api.md`` of ollama/ollama), backed by :class:`~simlab.ollama.engine.ChatEngine`.

Served: ``GET /api/version``, ``GET /api/tags``, ``POST /api/show``, ``GET /api/ps``, ``POST /api/chat``
(NDJSON stream or one object; ``tools`` in, ``message.tool_calls`` with object arguments out; the final
chunk carries ``done_reason``, the token counts and the durations in nanoseconds), ``POST /api/embed``.
Errors are ``{"error": "..."}`` with 400 (bad body), 404 (unknown model) or 500, as Ollama answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from simlab.ollama.assets import ModelAsset
from simlab.ollama.engine import ChatEngine, Generation, split_tool_calls

__all__ = ["OLLAMA_VERSION", "OllamaServer", "create_app"]

log = logging.getLogger(__name__)

# The Ollama release whose API this follows (a guess at a current one; clients only compare features).
OLLAMA_VERSION = "0.12.6"
_TOOL_PREFIX = "<tool_call>"


def _now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OllamaServer:
    """One loaded model and the bookkeeping the API reports about it.

    ``engine`` is a :class:`~simlab.ollama.engine.ChatEngine` (anything with its attributes: ``model_path``,
    ``n_ctx``, ``lock``, ``last_used``, ``chat_template``, ``stream`` and ``embed``).
    """

    def __init__(self, engine: ChatEngine, asset: ModelAsset, *, keep_alive_s: float = 300.0) -> None:
        self.engine = engine
        self.asset = asset
        self.keep_alive_s = keep_alive_s
        path = Path(engine.model_path)
        self.size = path.stat().st_size
        self.modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat().replace("+00:00", "Z")
        self._digest: str | None = None
        self._digest_lock = threading.Lock()

    @property
    def digest(self) -> str:
        """The model file's sha256 (known for the shipped model, computed once otherwise)."""
        with self._digest_lock:
            if self._digest is None:
                if self.size == self.asset.size:
                    self._digest = self.asset.sha256
                else:
                    h = hashlib.sha256()
                    with Path(self.engine.model_path).open("rb") as fh:
                        for block in iter(lambda: fh.read(1 << 22), b""):
                            h.update(block)
                    self._digest = h.hexdigest()
            return self._digest

    def details(self) -> dict[str, Any]:
        """Ollama's ``details`` object."""
        a = self.asset
        return {
            "parent_model": "",
            "format": "gguf",
            "family": a.family,
            "families": [a.family],
            "parameter_size": a.parameter_size,
            "quantization_level": a.quantization,
        }

    def check_model(self, name: Any) -> None:
        """404 unless ``name`` is this model (``name`` or ``name:latest`` style tags)."""
        if not isinstance(name, str) or not name:
            raise _BadRequest(400, "model is required")
        wanted = name if ":" in name else f"{name}:latest"
        if wanted != self.asset.name and name != self.asset.name:
            raise _BadRequest(404, f"model '{name}' not found")


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        return []
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _BadRequest(400, "messages must be a list of objects with role and content")
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant", "tool"):
            raise _BadRequest(400, f"invalid message role {m.get('role')!r}")
        for call in m.get("tool_calls") or []:
            fn = (call or {}).get("function") or {}
            if isinstance(fn.get("arguments"), str):
                try:
                    fn["arguments"] = json.loads(fn["arguments"])
                except ValueError as exc:
                    raise _BadRequest(400, "tool_calls arguments must be an object") from exc
    return messages


def _tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools = body.get("tools")
    if not tools:
        return None
    if not isinstance(tools, list):
        raise _BadRequest(400, "tools must be a list")
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise _BadRequest(400, "each tool needs a function object with a name")
        out.append({"type": "function", "function": tool["function"]})
    return out


def _grammar(fmt: Any) -> Any:
    if not fmt:
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if fmt == "json":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    if isinstance(fmt, dict):
        try:
            return LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise _BadRequest(400, f"invalid JSON schema in format: {exc}") from exc
    raise _BadRequest(400, 'format must be "json" or a JSON schema object')


def _done_fields(gen: Generation) -> dict[str, Any]:
    done: dict[str, Any] = {
        "done_reason": gen.done_reason,
        "total_duration": gen.total_duration,
        "load_duration": gen.load_duration,
        # The whole prompt, cached or not; the cached part apart, omitted when none, as Ollama reports cache hits
        # since its 2026 releases (ollama PR 17943; the exact first version is a guess).
        "prompt_eval_count": gen.prompt_eval_count,
        "prompt_eval_duration": gen.prompt_eval_duration,
        "eval_count": gen.eval_count,
        "eval_duration": gen.eval_duration,
    }
    if gen.cached_tokens:
        done["prompt_eval_cached_count"] = gen.cached_tokens
    return done


def create_app(server: OllamaServer) -> FastAPI:
    """The FastAPI application of one Ollama server."""
    app = FastAPI(title="Ollama (LabOps embedded GPU node)", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(_BadRequest)
    async def bad_request(_request: Request, exc: _BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise _BadRequest(400, f"invalid JSON body: {exc}") from exc
        if not isinstance(body, dict):
            raise _BadRequest(400, "the body must be a JSON object")
        return body

    @app.get("/")
    def root() -> Any:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse("Ollama is running")

    @app.get("/api/version")
    def version() -> Any:
        return {"version": OLLAMA_VERSION}

    @app.get("/api/tags")
    def tags() -> Any:
        a = server.asset
        return {
            "models": [
                {
                    "name": a.name,
                    "model": a.name,
                    "modified_at": server.modified,
                    "size": server.size,
                    "digest": server.digest,
                    "details": server.details(),
                }
            ]
        }

    @app.post("/api/show")
    async def show(request: Request) -> Any:
        body = await body_of(request)
        server.check_model(body.get("model") or body.get("name"))
        a = server.asset
        return {
            "modelfile": f"FROM {server.engine.model_path}\n",
            "parameters": 'stop "<|im_start|>"\nstop "<|im_end|>"',
            "template": server.engine.chat_template,
            "details": server.details(),
            "model_info": {
                "general.architecture": a.family,
                "general.parameter_count": 1_543_714_304,
                f"{a.family}.context_length": a.context_length,
            },
            "capabilities": ["completion", "tools"],
            "modified_at": server.modified,
        }

    @app.get("/api/ps")
    def ps() -> Any:
        expires = dt.datetime.fromtimestamp(server.engine.last_used + server.keep_alive_s, dt.UTC)
        return {
            "models": [
                {
                    "name": server.asset.name,
                    "model": server.asset.name,
                    "size": server.size,
                    "digest": server.digest,
                    "details": server.details(),
                    "expires_at": expires.isoformat().replace("+00:00", "Z"),
                    "size_vram": 0,
                    "context_length": server.engine.n_ctx,
                }
            ]
        }

    @app.post("/api/embed")
    async def embed(request: Request) -> Any:
        body = await body_of(request)
        server.check_model(body.get("model"))
        raw = body.get("input", [])
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise _BadRequest(400, "input must be a string or a list of strings")
        started = time.perf_counter_ns()

        def run() -> tuple[list[list[float]], int]:
            with server.engine.lock:
                return server.engine.embed(texts)

        vectors, count = await run_in_threadpool(run)
        return {
            "model": server.asset.name,
            "embeddings": vectors,
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": count,
        }

    @app.post("/api/chat")
    async def chat(request: Request) -> Any:
        body = await body_of(request)
        server.check_model(body.get("model"))
        messages = _messages(body)
        tools = _tools(body)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise _BadRequest(400, "options must be an object")
        grammar = _grammar(body.get("format"))
        name = server.asset.name
        if not messages:
            # Ollama answers an empty chat by loading the model: a done chunk with no content.
            return {"model": name, "created_at": _now_rfc3339(), "message": {"role": "assistant", "content": ""},
                    "done_reason": "load", "done": True}  # fmt: skip
        stream = body.get("stream", True) is not False

        def chunks() -> Generator[dict[str, Any], None, None]:
            with server.engine.lock:
                gen: Generation | None = None
                visible, held = "", ""
                for piece in server.engine.stream(messages, tools=tools, options=options, grammar=grammar):
                    if isinstance(piece, Generation):
                        gen = piece
                        break
                    if tools and (held or _TOOL_PREFIX in visible + piece or _partial_prefix(visible + piece)):
                        held += piece  # a tool call may be starting: hold it back until the end
                        continue
                    visible += piece
                    yield {"message": {"role": "assistant", "content": piece}, "done": False}
                assert gen is not None
                content, calls = split_tool_calls(held) if held else ("", [])
                if held and not calls:
                    content = held
                if content:
                    yield {"message": {"role": "assistant", "content": content}, "done": False}
                if calls:
                    yield {"message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False}
                gen.tool_calls = calls
                gen.content = (visible + content).strip() if calls else visible + content
                yield {"message": {"role": "assistant", "content": ""}, "done": True, **_done_fields(gen)}

        if stream:

            async def lines() -> AsyncIterator[bytes]:
                # Generation runs in a thread of its own that stops at the next piece once the client is gone
                # (Ollama does the same): an abandoned stream must not keep the single model slot busy.
                cancel = threading.Event()
                pieces: queue.Queue[Any] = queue.Queue(maxsize=64)
                threading.Thread(target=_pump, args=(chunks, cancel, pieces), daemon=True).start()
                try:
                    while True:
                        item = await run_in_threadpool(pieces.get)
                        if item is _END:
                            break
                        if isinstance(item, BaseException):
                            raise item
                        yield (json.dumps({"model": name, "created_at": _now_rfc3339(), **item}) + "\n").encode()
                finally:
                    cancel.set()

            return StreamingResponse(lines(), media_type="application/x-ndjson")

        def collect() -> dict[str, Any]:
            content, calls, final = "", [], {}
            for chunk in chunks():
                if chunk["done"]:
                    final = chunk
                    break
                content += chunk["message"].get("content", "")
                calls += chunk["message"].get("tool_calls", [])
            message: dict[str, Any] = {"role": "assistant", "content": content.strip() if calls else content}
            if calls:
                message["tool_calls"] = calls
            return {"model": name, "created_at": _now_rfc3339(), "message": message,
                    **{k: v for k, v in final.items() if k != "message"}}  # fmt: skip

        return await run_in_threadpool(collect)

    return app


_END = object()


def _offer(out: queue.Queue[Any], item: Any, cancel: threading.Event) -> bool:
    """Put ``item`` unless the reader has gone (``cancel``); False then."""
    while not cancel.is_set():
        try:
            out.put(item, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False


def _pump(
    chunks: Callable[[], Generator[dict[str, Any], None, None]], cancel: threading.Event, out: queue.Queue[Any]
) -> None:
    """Move a generation's chunks to ``out`` until it ends or ``cancel`` is set; then close it (the lock is freed)."""
    gen = chunks()
    try:
        for chunk in gen:
            if not _offer(out, chunk, cancel):
                break
    except Exception as exc:
        # Handed to the request, which fails with it (and the server logs it there).
        _offer(out, exc, cancel)
    finally:
        gen.close()
        _offer(out, _END, cancel)


def _partial_prefix(text: str) -> bool:
    """Whether ``text`` ends with the beginning of ``<tool_call>``."""
    return any(text.endswith(_TOOL_PREFIX[:k]) for k in range(1, len(_TOOL_PREFIX)))
