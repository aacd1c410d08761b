"""The audit log's anchor: its latest sequence number and hash, kept outside the database and signed.

A hash chain shows an edited or removed entry in the middle, but not the last entries removed: the
chain that remains is intact. Every append therefore also writes ``{seq, hash}`` of the new head to a file
outside the database, with an HMAC, so a log shorter than its anchor, or whose entry at the anchored
sequence has another hash, is detected. Every entry also names the anchor it was written under
(:attr:`AnchorFile.ident`, inside the hashed entry), so deleting the anchor file together with the tail
is detected too: the remaining entries say an anchor existed. Several writers (replicas) each keep their
own anchor: each is a lower bound of the head, and an anchor never moves backwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from core.errors import AuditError

_LOCK = threading.Lock()  # anchor writes of this process, one at a time

__all__ = ["Anchor", "AnchorFile"]


@dataclass(kw_only=True, frozen=True)
class Anchor:
    """The head the log had when it was last written from here."""

    seq: int
    hash: str


class AnchorFile:
    """A signed anchor file."""

    def __init__(self, path: Path, *, key: bytes | None = None, key_file: Path | None = None) -> None:
        self.path = path
        self._key = key
        self._key_file = key_file

    def _secret(self) -> bytes:
        if self._key is not None:
            return self._key
        assert self._key_file is not None
        if not self._key_file.is_file():
            self._key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        self._key = bytes.fromhex(self._key_file.read_text().strip())
        return self._key

    @property
    def ident(self) -> str:
        """Which anchor this is: every entry written under it carries this id, so its loss is noticed.

        Derived from the key, this host and the file's path: replicas (other hosts or keys) keep anchors of
        their own and never mistake another's for a lost one.
        """
        where = f"{socket.gethostname()}|{self.path.resolve()}"
        return "anc_" + hmac.new(self._secret(), where.encode(), hashlib.sha256).hexdigest()[:16]

    def exists(self) -> bool:
        """Whether the anchor file is there."""
        return self.path.is_file()

    def _mac(self, seq: int, digest: str) -> str:
        return hmac.new(self._secret(), f"{seq}|{digest}".encode(), hashlib.sha256).hexdigest()

    def read(self) -> Anchor | None:
        """The anchor, or None when none was written; AuditError when it was edited."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise AuditError(f"the audit anchor {self.path} is unreadable: {exc}") from exc
        seq, digest = int(data.get("seq", 0)), str(data.get("hash", ""))
        if not hmac.compare_digest(self._mac(seq, digest), str(data.get("mac", ""))):
            raise AuditError(f"the audit anchor {self.path} does not carry a valid signature: it was edited")
        return Anchor(seq=seq, hash=digest)

    def write(self, anchor: Anchor, *, force: bool = False) -> None:
        """Move the anchor forward to ``anchor`` (never backwards, unless ``force``: an acknowledged break)."""
        # Threads of one process (ten parallel provisions) moved it at once: each wrote the same pid-named temp
        # file, the second rename found it gone, and a slower thread could move the anchor back after a faster
        # one. The check and the write are one step per process, each thread with a temp file of its own.
        with _LOCK:
            current = None if force else self.read()
            if current is not None and current.seq >= anchor.seq:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            body = {"seq": anchor.seq, "hash": anchor.hash, "mac": self._mac(anchor.seq, anchor.hash)}
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self.path)
