"""Model states of prompt heads, kept on disk so that a restarted model server does not evaluate them again.

A prompt's head is its system turn: for the agent, the system prompt and every tool definition (about
3,300 tokens, 40-60 s of evaluation on a 2-core CPU). It is the same from question to question and from one
server start to the next, while everything after it changes. :class:`HeadStore` keeps the llama.cpp context
state of exactly those tokens in one file per head, so each ``labops lab up``, test session or restarted
GPU node evaluates a head once per model file.

llama.cpp's server keeps slots on disk when asked (``--slot-save-path``); Ollama keeps its cache in memory
only. The agent never depends on this: a missing, stale or damaged file costs the evaluation it would have
saved, nothing else.

A file holds ``MAGIC``, a 4-byte little-endian header length, the JSON header (what the state belongs to,
the token count, the state's SHA-256), the head's token ids (int32) and the state. Its name is a digest of
the model file's identity and the tokens, so a re-assembled model or another context size never loads a
state written for another. Files are written to a temporary name and renamed (two servers writing the same
head leave one whole file); the oldest are removed past the capacity.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
import struct
from array import array
from pathlib import Path
from typing import Any

__all__ = ["HeadStore", "load_state", "state_bytes"]

log = logging.getLogger(__name__)

MAGIC = b"LABOPS-LLAMA-STATE 1\n"
# Writing a state takes about a second; a temporary file this old belongs to a server that died writing it.
STALE_TMP_S = 600.0


def state_bytes(llm: Any) -> bytes:
    """The llama.cpp context state of ``llm`` (the key/value cache of its evaluated tokens)."""
    import llama_cpp

    size = llama_cpp.llama_state_get_size(llm._ctx.ctx)
    buf = (ctypes.c_uint8 * int(size))()
    used = int(llama_cpp.llama_state_get_data(llm._ctx.ctx, buf, size))
    return bytes(buf)[:used]


def load_state(llm: Any, data: bytes, tokens: tuple[int, ...] | list[int]) -> bool:
    """Load ``data`` (the state of ``tokens``) into ``llm``'s context; False if llama.cpp refused it.

    The logits are then stale: ``Llama.generate`` re-evaluates the last token before it samples. Touches
    llama-cpp-python internals (``input_ids``, ``n_tokens``, ``_requires_eval``): the version is pinned in
    pyproject.toml.
    """
    import llama_cpp

    buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    if int(llama_cpp.llama_state_set_data(llm._ctx.ctx, buf, len(data))) != len(data):
        return False
    llm.input_ids[: len(tokens)] = tokens
    llm.n_tokens = len(tokens)
    llm._requires_eval = True
    return True


class HeadStore:
    """States of prompt heads in ``folder``, at most ``capacity_bytes`` of them (the oldest go first)."""

    def __init__(self, folder: Path, *, model_path: Path, n_ctx: int, capacity_bytes: int, min_tokens: int = 512):
        from importlib.metadata import version

        self.folder = folder
        self.capacity = capacity_bytes
        # Shorter heads cost seconds to evaluate, about what reading their file costs.
        self.min_tokens = min_tokens
        stat = model_path.stat()
        build = version("llama_cpp_python")
        self.identity = f"{model_path.name}:{stat.st_size}:{stat.st_mtime_ns}:{n_ctx}:{build}"

    def path_for(self, tokens: list[int]) -> Path:
        """The file that holds (or would hold) the state of ``tokens``."""
        digest = hashlib.sha256(self.identity.encode())
        digest.update(array("i", tokens).tobytes())
        return self.folder / f"{digest.hexdigest()[:40]}.state"

    def has(self, tokens: list[int]) -> bool:
        """Whether the state of ``tokens`` is on disk."""
        return self.path_for(tokens).is_file()

    def load(self, llm: Any, tokens: list[int]) -> bool:
        """Load the state of exactly ``tokens`` into ``llm``; False if there is none (or it is unusable)."""
        path = self.path_for(tokens)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("cannot read the prompt state %s: %s", path, exc)
            return False
        data = self._parse(raw, tokens)
        if data is None or not load_state(llm, data, tokens):
            log.warning("the prompt state %s is damaged or from another build: removed", path)
            path.unlink(missing_ok=True)
            return False
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        return True

    def save(self, llm: Any, tokens: list[int]) -> Path | None:
        """Write the state of ``llm``'s context, which holds exactly ``tokens``; the file, or None on failure."""
        data = state_bytes(llm)
        header = json.dumps(
            {"identity": self.identity, "tokens": len(tokens), "sha256": hashlib.sha256(data).hexdigest()}
        ).encode()
        path = self.path_for(tokens)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as fh:
                fh.write(MAGIC)
                fh.write(struct.pack("<I", len(header)))
                fh.write(header)
                fh.write(array("i", tokens).tobytes())
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            # A full or read-only disk: the server goes on without the file.
            log.warning("cannot keep the prompt state in %s: %s", self.folder, exc)
            tmp.unlink(missing_ok=True)
            return None
        self.prune(keep=path)
        return path

    def prune(self, *, keep: Path | None = None) -> None:
        """Remove the least recently used files until the rest fit ``capacity`` (``keep`` stays).

        A temporary file left by a server killed while writing is removed once it is older than any write takes.
        """
        # Ages on the file system's own clock (the folder changed when the newest file was made or renamed), not
        # the process's: the two differ under a controlled clock, and a file's age must not.
        try:
            now = self.folder.stat().st_mtime
        except OSError:
            return
        for tmp in self.folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    tmp.unlink()
        try:
            files = [(p.stat().st_mtime_ns, p.stat().st_size, p) for p in self.folder.glob("*.state")]
        except OSError:
            return
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.capacity:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size

    def _parse(self, raw: bytes, tokens: list[int]) -> bytes | None:
        if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 4:
            return None
        at = len(MAGIC)
        (length,) = struct.unpack_from("<I", raw, at)
        at += 4
        try:
            header = json.loads(raw[at : at + length])
        except ValueError:
            return None
        at += length
        if not isinstance(header, dict) or header.get("identity") != self.identity:
            return None
        if header.get("tokens") != len(tokens):
            return None
        stored = raw[at : at + 4 * len(tokens)]
        if stored != array("i", tokens).tobytes():
            return None
        data = raw[at + 4 * len(tokens) :]
        return data if hashlib.sha256(data).hexdigest() == header.get("sha256") else None
