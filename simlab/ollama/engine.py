"""The GPU node's model, in-process: chat rendering, generation, tool-call parsing and embeddings.

The chat is rendered with the chat template the GGUF file carries (``tokenizer.chat_template``, the
model's own Jinja template), so tools land in the system turn the way the model was trained on and the
way Ollama renders them for Qwen 2.5. The model writes a tool call as ``<tool_call>{"name": ...,
"arguments": {...}}</tool_call>``; :func:`split_tool_calls` turns those into Ollama's ``tool_calls``
objects (``arguments`` as an object) and leaves everything else as content, as Ollama's parser does.
Anything else the model writes (a fenced JSON block, say) stays content: clients deal with it.

One generation runs at a time (a lock), like a single-slot Ollama. llama.cpp keeps the key/value cache
of the previous prompt and reuses its longest common prefix, so a stable system prompt is evaluated once.
Tokens are drafted from the context and verified in batches (:mod:`simlab.ollama.drafts`), which Ollama
does not do: it makes answers that quote their passages faster without changing how they are sampled.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox

from simlab.ollama.states import HeadStore, load_state, state_bytes

__all__ = ["ChatEngine", "Generation", "split_tool_calls"]

log = logging.getLogger(__name__)

_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_STOP = ("<|im_end|>", "<|endoftext|>", "<|im_start|>")


def _tojson(value: Any, indent: int | None = None) -> str:
    # As Hugging Face's chat templates expect: keys in insertion order, no HTML escaping.
    return json.dumps(value, ensure_ascii=False, indent=indent)


def split_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """``(content, tool_calls)`` from the model's output; unparseable ``<tool_call>`` blocks stay content."""
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    last = 0
    for match in _TOOL_CALL.finditer(text):
        body = match.group(1).strip()
        try:
            obj = json.loads(body)
        except ValueError:
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            continue
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                continue
        if not isinstance(args, dict):
            continue
        kept.append(text[last : match.start()])
        last = match.end()
        calls.append({"function": {"name": obj["name"], "arguments": args}})
    kept.append(text[last:])
    return "".join(kept).strip() if calls else text, calls


@dataclass(kw_only=True)
class Generation:
    """What one chat call produced, with Ollama's counters (durations in nanoseconds)."""

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    done_reason: str = "stop"
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    total_duration: int = 0
    load_duration: int = 0
    cached_tokens: int = 0


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixCache:
    """Saved model states (the key/value cache of the tokens evaluated) keyed by those tokens.

    llama-cpp-python's own state cache also copies a ``n_batch x n_vocab`` logits array per state (300 MB for
    this vocabulary), which exhausts memory after a few prompts; only the llama.cpp context state is kept
    here (about 28 KB per token for this model). Restoring marks the logits stale, so ``Llama.generate``
    re-evaluates the last token before it samples. Touches llama-cpp-python internals (``input_ids``,
    ``n_tokens``, ``_requires_eval``): the version is pinned in pyproject.toml.
    """

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.size = 0

    def save(self, llm: Any) -> None:
        """Keep the context's current state under its tokens (oldest states go first when full)."""
        key = tuple(llm.input_ids[: llm.n_tokens].tolist())
        data = state_bytes(llm)
        if key in self.states:
            self.size -= len(self.states.pop(key))
        self.states[key] = data
        self.size += len(data)
        while self.size > self.capacity and len(self.states) > 1:
            _old, dropped = self.states.popitem(last=False)
            self.size -= len(dropped)

    def restore(self, llm: Any, tokens: list[int], *, better_than: int) -> int:
        """Load the state sharing the longest prefix with ``tokens`` if it beats ``better_than``; tokens reused."""
        best_key, best = None, better_than
        for key in self.states:
            n = _common_prefix(list(key[: len(tokens)]), tokens)
            if n > best:
                best_key, best = key, n
        if best_key is None:
            return 0
        self.states.move_to_end(best_key)
        return best if load_state(llm, self.states[best_key], best_key) else 0


class ChatEngine:
    """A GGUF chat model served the way Ollama serves it."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        cache_mb: int = 1536,
        draft_tokens: int = 8,
        state_dir: Path | None = None,
        state_mb: int = 1024,
    ) -> None:
        from simlab.ollama.drafts import DraftingLlama, PromptLookup

        started = time.perf_counter_ns()
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.llm = DraftingLlama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        # Tokens guessed from the context and checked by the model in one batch (0: one token at a time).
        self.drafts = PromptLookup(tokens=draft_tokens) if draft_tokens > 0 else None
        self.load_duration = time.perf_counter_ns() - started
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model_path} carries no chat template (tokenizer.chat_template)")
        self.chat_template: str = template
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = _tojson
        self.template = env.from_string(template)
        self.lock = threading.Lock()
        # Saved model states keyed by their tokens: a prompt that shares a prefix with any earlier one (the
        # same system prompt and tools, or the same conversation so far) restarts from the longest one.
        self.cache = PrefixCache(capacity_bytes=cache_mb << 20) if cache_mb > 0 else None
        # The system turn's state on disk too, for the next start of the server (simlab.ollama.states).
        self.heads = (
            HeadStore(state_dir, model_path=model_path, n_ctx=n_ctx, capacity_bytes=state_mb << 20)
            if state_dir is not None and state_mb > 0
            else None
        )
        self._embedder: Any = None
        self.last_used = time.time()

    # --- prompt ----------------------------------------------------------------------------------------
    def render(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, *, generation_prompt: bool = True
    ) -> str:
        """The prompt text for ``messages`` (Ollama message shape) and ``tools`` (function definitions)."""
        rendered_messages = []
        for m in messages:
            item: dict[str, Any] = {"role": m.get("role", "user"), "content": m.get("content") or ""}
            if m.get("tool_calls"):
                item["tool_calls"] = [
                    {"function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments", {})}}
                    for c in m["tool_calls"]
                ]
            rendered_messages.append(item)
        try:
            return str(
                self.template.render(
                    messages=rendered_messages, tools=tools or None, add_generation_prompt=generation_prompt
                )
            )
        except jinja2.TemplateError as exc:
            raise ValueError(f"cannot render the chat template: {exc}") from exc

    def head(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, tokens: list[int]) -> int:
        """How many of the prompt's ``tokens`` are its system turn (tools included); 0 if it has none."""
        system = list(takewhile(lambda m: m.get("role") == "system", messages))
        if not system or len(system) == len(messages):
            return 0
        try:
            head = self.tokenize(self.render(system, tools, generation_prompt=False))
        except ValueError:
            return 0
        return len(head) if head and tokens[: len(head)] == head else 0

    def tokenize(self, text: str) -> list[int]:
        """Prompt tokens (special tokens such as ``<|im_start|>`` recognised)."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def fit(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, reserve: int) -> list[int]:
        """Tokens of the prompt; the oldest non-system turns are dropped until it fits, as Ollama does."""
        kept = list(messages)
        while True:
            tokens = self.tokenize(self.render(kept, tools))
            if len(tokens) + reserve <= self.n_ctx:
                return tokens
            droppable = [i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"]
            if not droppable:
                raise ValueError(
                    f"the prompt needs {len(tokens)} tokens and the context holds {self.n_ctx} "
                    f"(with {reserve} for the answer): shorten the messages or raise num_ctx"
                )
            del kept[droppable[0]]

    # --- generation ------------------------------------------------------------------------------------
    def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        options: dict[str, Any] | None = None,
        grammar: Any = None,
    ) -> Iterator[str | Generation]:
        """Yield text pieces as they are generated, then the :class:`Generation` (call with ``lock`` held)."""
        opts = options or {}
        started = time.perf_counter_ns()
        max_new = int(opts.get("num_predict") or 1024)
        if max_new < 0:
            max_new = self.n_ctx
        tokens = self.fit(messages, tools, reserve=min(max_new, self.n_ctx // 2))
        head = self.head(messages, tools, tokens) if self.heads is not None else 0
        cached = self._restore(tokens, head)
        if opts.get("seed") is not None:
            self.llm.set_seed(int(opts["seed"]))
        stops = [*_STOP, *(opts.get("stop") or [])]
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text, held = "", ""
        gen = Generation(prompt_eval_count=len(tokens), cached_tokens=cached, load_duration=0)
        first_token_at: int | None = None
        eos = self.llm.token_eos()
        # Free text only: under a grammar (a JSON tool call) the context's continuations were measured to be
        # mostly wrong guesses, and verifying them made those calls about a quarter slower.
        self.llm.draft_model = self.drafts if grammar is None else None
        try:
            for token in self.llm.generate(
                tokens,
                temp=float(opts.get("temperature", 0.8)),
                top_k=int(opts.get("top_k", 40)),
                top_p=float(opts.get("top_p", 0.9)),
                min_p=float(opts.get("min_p", 0.0)),
                repeat_penalty=float(opts.get("repeat_penalty", 1.1)),
                grammar=grammar,
            ):
                if first_token_at is None:
                    first_token_at = time.perf_counter_ns()
                if token == eos or self.llm.token_eos() == token:
                    break
                gen.eval_count += 1
                held += decoder.decode(bytes(self.llm.detokenize([token], special=True)))
                stop_at = min((held.find(s) for s in stops if s in held), default=-1)
                if stop_at >= 0:
                    text += held[:stop_at]
                    if held[:stop_at]:
                        yield held[:stop_at]
                    held = ""
                    break
                # Hold back what could be the start of a stop string.
                safe = len(held)
                for s in stops:
                    for k in range(min(len(s) - 1, len(held)), 0, -1):
                        if held.endswith(s[:k]):
                            safe = min(safe, len(held) - k)
                            break
                if safe > 0:
                    piece, held = held[:safe], held[safe:]
                    text += piece
                    yield piece
                if gen.eval_count >= max_new:
                    gen.done_reason = "length"
                    break
        finally:
            self.last_used = time.time()
            if self.cache is not None and self.llm.n_tokens > 0:
                self.cache.save(self.llm)
            if head:
                self._keep_head(tokens[:head])
        if held:
            text += held
            yield held
        now = time.perf_counter_ns()
        first = first_token_at or now
        gen.prompt_eval_duration = first - started
        gen.eval_duration = now - first
        gen.total_duration = now - started
        gen.content = text
        yield gen

    def _restore(self, tokens: list[int], head: int = 0) -> int:
        """Load the saved state sharing the longest prefix with ``tokens``; returns the tokens reused.

        In memory first; the first ``head`` tokens' state from disk when nothing in memory goes as far.
        """
        current = _common_prefix(self.llm.input_ids[: self.llm.n_tokens].tolist(), tokens)
        if self.cache is not None:
            current = max(current, self.cache.restore(self.llm, tokens, better_than=current))
        if head > current and self.heads is not None and self.heads.load(self.llm, tokens[:head]):
            log.info("the prompt's first %d tokens were read from %s", head, self.heads.folder)
            return head
        return current

    def _keep_head(self, head: list[int]) -> None:
        """Write the state of the prompt's system turn to disk, once per head (the context keeps only it)."""
        if self.heads is None or len(head) < self.heads.min_tokens or self.heads.has(head):
            return
        if self.llm.n_tokens < len(head) or self.llm.input_ids[: len(head)].tolist() != head:
            return  # generation stopped before the head was evaluated
        # Drop what follows the head from the context, so the state written holds the head only; the whole
        # conversation's state is in the memory cache already.
        self.llm._ctx.kv_cache_seq_rm(-1, len(head), -1)
        self.llm.n_tokens = len(head)
        self.llm._requires_eval = True
        started = time.perf_counter()
        path = self.heads.save(self.llm, head)
        if path is not None:
            log.info("kept the first %d prompt tokens' state in %s (%.1f s)", len(head), path,
                     time.perf_counter() - started)  # fmt: skip

    # --- embeddings --------------------------------------------------------------------------------------
    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Unit-length embeddings (mean pooling) and the number of input tokens."""
        if self._embedder is None:
            from llama_cpp import Llama

            # A second view of the same file for embeddings (the weights are memory-mapped, so shared).
            self._embedder = Llama(
                model_path=str(self.model_path), embedding=True, n_ctx=2048, n_threads=self.n_threads, verbose=False
            )
        vectors: list[list[float]] = []
        count = 0
        for text in texts:
            count += len(self._embedder.tokenize(text.encode("utf-8")))
            raw = self._embedder.embed(text, normalize=True)
            vector = raw[0] if raw and isinstance(raw[0], list) else raw
            vectors.append([float(x) for x in vector])
        return vectors, count
