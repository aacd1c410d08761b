"""The embedded PostgreSQL 16 server (binaries from the ``pgserver`` wheel), run in the background.

``initdb`` once into ``<lab_dir>/postgres/data``; then ``pg_ctl start`` detaches the postmaster so it
outlives the ``labops lab up`` command, and ``labops lab down`` stops it by its pid file. TCP on
127.0.0.1 needs a password (scram-sha-256); the superuser ``postgres`` can only log in through a
unix socket in a directory only the server's system user (and root) can enter.

PostgreSQL refuses to run as root, so as root the server runs as the system user ``pgserver``
(created if missing, as ``pgserver.get_server`` does) and the lab directory's parents are made
traversable for it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from simlab.daemons import signal_until_gone

__all__ = ["postgres_status", "start_postgres", "stop_postgres"]


def _bin_dir() -> Path:
    # Located without importing pgserver: its import touches platformdirs, which warns without XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver package is not installed (pip install pgserver)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


BIN = _bin_dir()
SYSTEM_USER = "pgserver"
DBNAME = "desi"
SCHEMA = "desi_dr1"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-r", "-s", "/usr/sbin/nologin", SYSTEM_USER], check=True, capture_output=True)
    return SYSTEM_USER


def _data_dir(lab_dir: Path) -> Path:
    return (lab_dir / "postgres" / "data").resolve()


def _socket_dir(lab_dir: Path) -> Path:
    # Unix socket paths are limited to ~107 bytes: keep the directory short, unique per lab.
    digest = hashlib.sha1(str(_data_dir(lab_dir)).encode()).hexdigest()[:10]
    return Path("/tmp") / f"labops-pg-{digest}"


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _traversable(path: Path) -> None:
    """Let the server's system user reach ``path`` (o+x on each parent, as pgserver does)."""
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _pg(cmd: str, args: list[str], user: str | None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # Drop root's group and supplementary groups too: with gid 0 the group bits of root-owned
    # directories (often ---) would apply instead of the "other" bits made traversable above.
    ids: dict[str, Any] = {"user": user, "group": user, "extra_groups": []} if user else {}
    proc = subprocess.run([str(BIN / cmd), *args], capture_output=True, text=True, **ids, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def postgres_status(lab_dir: Path) -> dict[str, Any] | None:
    """``{"pid", "port"}`` of the running server, or None."""
    pid_file = _data_dir(lab_dir) / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return {"pid": pid, "port": port}


def _init(lab_dir: Path, user: str | None) -> None:
    data = _data_dir(lab_dir)
    data.parent.mkdir(parents=True, exist_ok=True)
    if (data / "PG_VERSION").is_file():
        return
    if data.exists():
        shutil.rmtree(data)  # a half-made cluster from an interrupted first start
    data.mkdir(mode=0o700)
    _chown(data, user)
    if user is not None:
        _traversable(data.parent)
    _pg(
        "initdb",
        [
            "-D",
            str(data),
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-instructions",
        ],
        user,
    )
    hba = data / "pg_hba.conf"
    # Only the superuser over the private socket, everyone else with a password over TCP.
    hba.write_text(
        "local all postgres trust\nhost  all all 127.0.0.1/32 scram-sha-256\nhost  all all ::1/128 scram-sha-256\n"
    )
    _chown(hba, user)


def start_postgres(lab_dir: Path, *, port: int, secrets: dict[str, Any]) -> dict[str, Any]:
    """Start (or find running) the server and make sure the DESI database and roles exist.

    Returns ``{"host": "127.0.0.1", "port": port, "dbname": "desi", "pid": <postmaster pid>}``.
    """
    user = _run_as()
    _init(lab_dir, user)
    running = postgres_status(lab_dir)
    sock = _socket_dir(lab_dir)
    if running is None:
        if user is not None:
            # Again on every start: something (e.g. pytest's temp root) may have tightened a parent since initdb.
            _traversable(_data_dir(lab_dir).parent)
        sock.mkdir(mode=0o700, exist_ok=True)
        _chown(sock, user)
        log = _data_dir(lab_dir).parent / "postgres.log"
        log.touch()
        _chown(log, user)
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock}"
        _pg("pg_ctl", ["-D", str(_data_dir(lab_dir)), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], user)
        running = postgres_status(lab_dir)
        if running is None:
            raise RuntimeError(f"PostgreSQL did not start; see {log}")
    _provision(sock, int(running["port"]), secrets["postgres"])
    return {"host": "127.0.0.1", "port": int(running["port"]), "dbname": DBNAME, "pid": int(running["pid"])}


def _provision(sock: Path, port: int, creds: dict[str, str]) -> None:
    """Roles, database and grants; idempotent, passwords always reset to the lab's secrets."""
    admin, reader = creds["admin_user"], creds["reader_user"]
    conninfo = f"host={sock} port={port} user=postgres dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for role, password in ((admin, creds["admin_password"]), (reader, creds["reader_password"])):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DBNAME), sql.Identifier(admin)))
        # The backstops; the real guard is that the reader only ever gets SELECT.
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(reader)))
        conn.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '120s'").format(sql.Identifier(reader)))
    with psycopg.connect(f"host={sock} port={port} user=postgres dbname={DBNAME}", autocommit=True) as conn:
        ident = {
            "a": sql.Identifier(admin),
            "r": sql.Identifier(reader),
            "s": sql.Identifier(SCHEMA),
            "d": sql.Identifier(DBNAME),
        }
        for stmt in (
            "REVOKE ALL ON DATABASE {d} FROM PUBLIC",
            "GRANT CONNECT ON DATABASE {d} TO {r}",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            "CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {a}",
            "GRANT USAGE ON SCHEMA {s} TO {r}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}",
            "ALTER DEFAULT PRIVILEGES FOR ROLE {a} IN SCHEMA {s} GRANT SELECT ON TABLES TO {r}",
        ):
            conn.execute(sql.SQL(stmt).format(**ident))


def stop_postgres(lab_dir: Path, *, timeout: float = 60.0) -> None:
    """Stop the server if it runs: PostgreSQL's fast shutdown, then its immediate one after ``timeout`` s.

    By signal, as ``pg_ctl stop`` does it, not through pg_ctl: starting a helper as the server's user forks
    this process, and where gRPC threads run in it (pymilvus) the child could abort before it ran
    ("epoll_wait error: Bad file descriptor", exit -6; seen at the end of an eval).
    """
    running = postgres_status(lab_dir)
    if running is None:
        return
    pid = int(running["pid"])
    # Waits until the process is gone, not just its pid file: the server removes that a moment before it exits.
    fast_then_immediate = [(signal.SIGINT, timeout), (signal.SIGQUIT, 10.0)]
    if not signal_until_gone(pid, fast_then_immediate, send=lambda sig: os.kill(pid, sig)):
        raise RuntimeError(f"PostgreSQL (pid {pid}) did not stop; see {_data_dir(lab_dir).parent / 'postgres.log'}")


def create_database(lab_dir: Path, name: str, *, owner: str) -> None:
    """A new, empty database owned by ``owner`` (e.g. for LabOps' own state: approvals, audit, checkpoints)."""
    running = postgres_status(lab_dir)
    if running is None:
        raise RuntimeError(f"PostgreSQL of {lab_dir} is not running")
    conninfo = f"host={_socket_dir(lab_dir)} port={running['port']} user=postgres dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
