"""Who is asking from the CLI: the operating-system account mapped in ``lab.toml``; ``--as`` only for operators.

A shell is not an authentication: anyone who can type ``--as admin2`` must not become admin2. The CLI
acts as the lab user whose ``os_users`` lists the account running it (an unmapped account acts under its
own name, as an unknown user). Claiming another identity with ``--as`` needs the ``operator`` role; the
audit log records both the real and the claimed user.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass

from core.errors import IdentityError
from policies.directory import Directory

__all__ = ["OPERATOR_ROLE", "Identity", "cli_identity", "os_account", "valid_user_name"]

OPERATOR_ROLE = "operator"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(kw_only=True, frozen=True)
class Identity:
    """The effective user and, when they differ, the real one behind it."""

    user: str
    real_user: str

    @property
    def claimed(self) -> bool:
        """Whether the effective user was claimed with ``--as``."""
        return self.user != self.real_user


def valid_user_name(name: str) -> bool:
    """Lab user names: letters, digits and ``._@-``, up to 64 characters (no quotes, spaces or controls)."""
    # fullmatch: ``$`` would also accept a name followed by a newline ("admin2\n").
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def os_account() -> str:
    """The operating-system account running this process, from its user id.

    Not from ``$USER``/``$LOGNAME`` (what :func:`getpass.getuser` reads first): anyone can set those, and
    ``USER=root`` would then map to the operator.
    """
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a container running under a uid without a passwd entry
        return f"uid{uid}"


def cli_identity(directory: Directory, *, claimed: str | None, account: str | None = None) -> Identity:
    """Resolve the CLI's identity; raises IdentityError for a bad name or a claim the account may not make."""
    account = account or os_account()
    real = directory.os_users.get(account, account)
    if claimed is None or claimed == real:
        return Identity(user=real, real_user=real)
    if not valid_user_name(claimed):
        raise IdentityError(
            f"--as {claimed!r} is not a user name (letters, digits and . _ @ -, up to 64 characters, nothing else: "
            "no spaces, quotes or line breaks)"
        )
    if OPERATOR_ROLE not in directory.user(real).roles:
        raise IdentityError(
            f"you are {real} (operating-system user {account}); only users with the {OPERATOR_ROLE!r} role may act "
            f"as someone else with --as. Drop --as, or map your account to {claimed} under [users.{claimed}] "
            "os_users in policies/lab.toml"
        )
    return Identity(user=claimed, real_user=real)
