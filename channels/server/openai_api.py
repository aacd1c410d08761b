"""The OpenAI-compatible API OpenWebUI talks to: ``GET /v1/models`` and ``POST /v1/chat/completions``.

The agent appears as one model (``server.model_name``). A chat request runs one agent turn for the newest
user message; the conversation lives in the agent's thread (see :mod:`channels.server.chats`), so the
history OpenWebUI sends again each time is neither replayed nor duplicated, and the same request sent
twice runs once. ``tools`` sent by the front-end are accepted and ignored (the lab's tools are the
agent's), and its background tasks are answered at once. Streaming follows OpenAI:
``chat.completion.chunk`` events, ``usage`` in a last chunk when ``stream_options.include_usage`` asks,
then ``data: [DONE]``. Errors use OpenAI's shape: 400 bad request, 401 key, 404 model, 429 busy (with
``Retry-After``), 503 when the model server cannot be reached.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from agent.commands import approval_command, decide, housekeeping, last_user_text
from channels.server.admission import Busy
from channels.server.conversation import turn_pieces
from channels.server.identity import Identified, identify
from channels.server.state import ServerState
from channels.server.turns import Turn
from policies.guard import Caller

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter()

MAX_BODY_BYTES = 4 * 1024 * 1024  # a long OpenWebUI history with its ~36 tool definitions stays far below
REPEAT_WAIT_S = 300.0  # how long a repeated request waits for the first one's reply


def error(status: int, message: str, kind: str, *, code: str | None = None, param: str | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    """An OpenAI-shaped error."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.labops
    return state


async def _identify(request: Request) -> Identified | JSONResponse:
    state = _state(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    who = await run_in_threadpool(identify, state.settings, state.keys, headers, known=state.known_user)
    if who is None:
        return error(401, "Incorrect or missing API key: send `Authorization: Bearer <key>`; an operator creates "
                     "keys with `labops keys create NAME --as USER`.", "invalid_request_error",
                     code="invalid_api_key")  # fmt: skip
    if who.refused is not None:
        caller = Caller(user=who.user, channel="api", request_text=f"{request.method} {request.url.path}",
                        request_id=getattr(request.state, "request_id", None), origin=who.origin)  # fmt: skip
        await run_in_threadpool(state.agent.guard.refuse_identity, caller=caller, reason=who.refused)
        log.warning("refused a forwarded identity on key %s: %s", who.key.id, who.refused)
        return error(401, f"Forwarded user refused: {who.refused}.", "invalid_request_error",
                     code="forwarded_identity_refused")  # fmt: skip
    return who


@router.get("/v1/models")
async def models(request: Request) -> Any:
    """The agent as a model."""
    who = await _identify(request)
    if isinstance(who, JSONResponse):
        return who
    name = _state(request).settings.server.model_name
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 1_735_689_600, "owned_by": "labops"}]}


def _usage(prompt: str, completion: str, result: Any) -> dict[str, int]:
    # The model's own count when the turn used it; otherwise an estimate of four characters a token.
    completion_tokens = max(1, len(completion) // 4)
    total = int(getattr(result, "tokens", 0) or 0)
    prompt_tokens = max(1, total - completion_tokens) if total > completion_tokens else max(1, len(prompt) // 4)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip


def _validate(state: ServerState, body: Any) -> JSONResponse | None:
    if not isinstance(body, dict):
        return error(400, "The body must be a JSON object with model and messages.", "invalid_request_error")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error(400, f"model is required; use {state.settings.server.model_name!r}.", "invalid_request_error",
                     param="model")  # fmt: skip
    if model != state.settings.server.model_name:
        return error(404, f"The model {model!r} does not exist; use {state.settings.server.model_name!r}.",
                     "invalid_request_error", code="model_not_found", param="model")  # fmt: skip
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return error(400, "messages must be a non-empty list of {role, content} objects.", "invalid_request_error",
                     param="messages")  # fmt: skip
    bad = [
        i for i, m in enumerate(messages) if m.get("role") not in ("system", "developer", "user", "assistant", "tool")
    ]
    if bad:
        return error(400, f"messages[{bad[0]}].role must be system, user, assistant or tool.", "invalid_request_error",
                     param=f"messages[{bad[0]}].role")  # fmt: skip
    if not any(m.get("role") == "user" for m in messages):
        return error(400, "messages needs at least one user message.", "invalid_request_error", param="messages")
    for name in ("stream", "stream_options"):
        if name in body and body[name] is not None and not isinstance(body[name], bool if name == "stream" else dict):
            return error(400, f"{name} has the wrong type.", "invalid_request_error", param=name)
    return None


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Any:
    """One agent turn (or an approval command, or a front-end task), streamed or not."""
    state = _state(request)
    who = await _identify(request)
    if isinstance(who, JSONResponse):
        return who
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return error(413, f"The request is larger than {MAX_BODY_BYTES // 1024 // 1024} MiB; start a new chat.",
                     "invalid_request_error")  # fmt: skip
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return error(400, "The body is not valid JSON.", "invalid_request_error")
    except RecursionError:
        # json.loads recurses per nesting level: a body nested tens of thousands deep is refused, not a 500.
        return error(400, "The body is nested too deeply to be a chat request.", "invalid_request_error")
    problem = _validate(state, body)
    if problem is not None:
        return problem
    messages: list[dict[str, Any]] = body["messages"]
    request_id = getattr(request.state, "request_id", None)
    text = last_user_text(messages).strip()
    caller = Caller(user=who.user, channel="api", request_text=text[:2000], request_id=request_id, origin=who.origin)
    reply = await run_in_threadpool(_reply, state, who, caller, messages)
    if isinstance(reply, JSONResponse):
        return reply
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    name = state.settings.server.model_name

    if not body.get("stream"):
        full = await run_in_threadpool(reply.wait)
        if reply.unavailable is not None and not reply.any_tool:
            return error(503, reply.unavailable, "server_error", code="backend_unavailable",
                         headers={"Retry-After": "30"})  # fmt: skip
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": full}, "finish_reason": "stop"}],
            "usage": _usage(text, full, reply.result),
        }  # fmt: skip

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def sse() -> Iterator[bytes]:
        def event(payload: dict[str, Any]) -> bytes:
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return event({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": name,
                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})  # fmt: skip

        yield chunk({"role": "assistant", "content": ""})
        full = ""
        for piece in reply.pieces():
            full += piece
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        if include_usage:
            yield event({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": name,
                         "choices": [], "usage": _usage(text, full, reply.result)})  # fmt: skip
        yield b"data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip


class _Reply:
    """A reply that is already known (housekeeping, a repeat) or produced by a running :class:`Turn`."""

    def __init__(self, *, text: str | None = None, turn: Turn | None = None) -> None:
        self._text, self.turn = text, turn
        self.result: Any = None
        self.unavailable: str | None = None
        self.any_tool = False

    def pieces(self) -> Iterator[str]:
        if self.turn is None:
            yield self._text or ""
        else:
            yield from self.turn.pieces()

    def wait(self) -> str:
        return self._text or "" if self.turn is None else self.turn.wait()


def _reply(
    state: ServerState, who: Identified, caller: Caller, messages: list[dict[str, Any]]
) -> _Reply | JSONResponse:
    task = housekeeping(messages)
    if task is not None:
        state.metrics.housekeeping.inc()
        return _Reply(text=task)
    text = caller.request_text or ""
    if not text.strip():
        return error(400, "The last user message has no text.", "invalid_request_error", param="messages")
    key = state.chats.request_key(who.user, messages, chat_id=who.chat_id)
    if not state.chats.claim(key):
        earlier = state.chats.reply(key, wait_s=REPEAT_WAIT_S)
        if earlier is not None:
            return _Reply(text=earlier)
        if not state.chats.claim(key):
            return error(429, "The same request is still being answered; retry in a minute.", "rate_limit_error",
                         headers={"Retry-After": "60"})  # fmt: skip
    thread = state.chats.thread_for(who.user, messages, chat_id=who.chat_id)
    command = approval_command(text)
    gate = None
    if command is None:
        try:
            state.gate.admit()
        except Busy as exc:
            state.chats.release(key)
            state.metrics.rejected.inc()
            return error(429, f"LabOps is busy with other questions; retry in {exc.retry_after} s.",
                         "rate_limit_error", code="rate_limit_exceeded",
                         headers={"Retry-After": str(exc.retry_after)})  # fmt: skip
        gate = state.gate
    reply = _Reply()

    def produce() -> Iterator[str]:
        if command is not None:
            yield decide(state.agent, caller, command).text
            return

        def on_result(result: Any) -> None:
            reply.result = result
            reply.any_tool = bool(result.tool_calls)
            if result.stop == "model_unavailable":
                reply.unavailable = result.answer
            state.metrics.observe_turn(result, channel="api")

        yield from turn_pieces(state.agent, text, caller=caller, thread=thread,
                               on_approval=state.approval_requested, on_result=on_result)  # fmt: skip

    def done(full: str, failed: bool) -> None:
        if failed or reply.unavailable is not None:
            state.chats.release(key)  # the same request may be tried again
            return
        state.chats.finish(key, full)
        state.chats.remember(who.user, messages, full, thread)

    reply.turn = Turn(produce, gate=gate, on_done=done, request_id=caller.request_id)
    return reply
