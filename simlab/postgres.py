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

import contextlib
import functools
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from simlab.daemons import signal_until_gone

__all__ = ["postgres_status", "socket_dir", "start_postgres", "stop_postgres"]


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


def socket_dir(lab_dir: Path) -> Path:
    """The directory of the server's Unix socket (in /tmp: socket paths are limited to ~107 bytes), one per lab."""
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


def _proc_state(pid: int) -> str | None:
    """The process's state letter from ``/proc/<pid>/stat`` (``Z`` for a zombie), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces: the state follows its closing parenthesis.
    return stat.rpartition(")")[2].split()[0] if ")" in stat else None


def _is_our_server(pid: int, data: Path) -> bool:
    """Whether ``pid`` is a live (not zombie) process of this lab's PostgreSQL: its binary and data directory.

    A killed postmaster stays a zombie until init reaps it, and its pid may be reused by anything afterwards.
    """
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        # Not allowed to look (another user's process): trust the pid file, as PostgreSQL itself does.
        return True
    return exe.parent == BIN.resolve() and cwd == data


def leftover_processes(lab_dir: Path) -> list[int]:
    """Processes of this lab's server still alive though their postmaster is gone (e.g. after ``kill -9``).

    Backends and parallel workers run in the data directory; while they live they keep the server's shared
    memory attached, and a new ``pg_ctl start`` refuses to run ("pre-existing shared memory block is still
    in use").
    """
    data = _data_dir(lab_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            pid = int(entry.name)
            try:
                if (
                    Path(os.readlink(f"/proc/{pid}/exe")).parent == BIN.resolve()
                    and Path(os.readlink(f"/proc/{pid}/cwd")) == data
                    and _proc_state(pid) not in (None, "Z", "X")
                ):
                    found.append(pid)
            except OSError:
                continue
    return sorted(found)


def postgres_status(lab_dir: Path) -> dict[str, Any] | None:
    """``{"pid", "port"}`` of the running server, or None."""
    pid_file = _data_dir(lab_dir) / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    if not _is_our_server(pid, _data_dir(lab_dir)):
        return None
    return {"pid": pid, "port": port}


def _stop_leftovers(lab_dir: Path) -> None:
    """End what is left of a killed server, so a new one can start; RuntimeError naming what will not end."""
    left = leftover_processes(lab_dir)
    if not left:
        return
    for pid in left:
        # SIGQUIT is PostgreSQL's "exit at once" for its children; SIGKILL if one does not listen.
        signal_until_gone(pid, [(signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)], send=functools.partial(_signal, pid))
    still = leftover_processes(lab_dir)
    if still:
        raise RuntimeError(
            f"processes {', '.join(map(str, still))} of the earlier PostgreSQL in {_data_dir(lab_dir)} do not end "
            "and keep its shared memory; stop them (kill -9 PID) and run `labops lab up` again"
        )


def _clear_stale_pid_file(lab_dir: Path) -> None:
    """Remove ``postmaster.pid`` of a postmaster that is dead but not yet reaped (a zombie).

    PostgreSQL checks the pid with ``kill(pid, 0)``, which succeeds on a zombie, and refuses to start ("lock
    file postmaster.pid already exists"). Its parent (init) reaps it within moments; if it does not, the
    file is stale and is removed, as PostgreSQL would remove it for a pid that is gone.
    """
    pid_file = _data_dir(lab_dir) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + 5.0
    while _proc_state(pid) in ("Z", "X") and time.monotonic() < deadline:
        time.sleep(0.05)
    if _proc_state(pid) in (None, "Z", "X"):
        pid_file.unlink(missing_ok=True)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


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
    sock = socket_dir(lab_dir)
    if running is None:
        _stop_leftovers(lab_dir)
        _clear_stale_pid_file(lab_dir)
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
    if running is not None:
        pid = int(running["pid"])
        # Waits until the process is gone, not just its pid file: the server removes that a moment before it exits.
        fast_then_immediate = [(signal.SIGINT, timeout), (signal.SIGQUIT, 10.0)]
        if not signal_until_gone(pid, fast_then_immediate, send=lambda sig: os.kill(pid, sig)):
            log = _data_dir(lab_dir).parent / "postgres.log"
            raise RuntimeError(f"PostgreSQL (pid {pid}) did not stop; see {log}")
    # The socket directory in /tmp outlives the server otherwise: one per lab directory ever started.
    # Not there, or not empty (something of this lab's server is still in it): left alone.
    with contextlib.suppress(OSError):
        socket_dir(lab_dir).rmdir()


def create_database(lab_dir: Path, name: str, *, owner: str) -> None:
    """A new, empty database owned by ``owner`` (e.g. for LabOps' own state: approvals, audit, checkpoints)."""
    running = postgres_status(lab_dir)
    if running is None:
        raise RuntimeError(f"PostgreSQL of {lab_dir} is not running")
    conninfo = f"host={socket_dir(lab_dir)} port={running['port']} user=postgres dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
