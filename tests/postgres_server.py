"""A throwaway PostgreSQL server from Debian's packages, for tests, benchmarks and scripts.

:func:`postgres_server` runs ``initdb`` in a new temporary folder, starts the server on a free
loopback port (its Unix socket in that folder too, trust authentication, nothing listening
beyond ``127.0.0.1``), creates a database and yields a :class:`PostgresServer` whose ``dsn`` is
``postgresql://<user>@127.0.0.1:<port>/<database>``; on exit it stops the server
(``pg_ctl stop -m fast``) and deletes the folder. ``initdb`` refuses to run as root: as root the
server runs as the ``postgres`` system user (which Debian's package creates; created here with
``useradd --system`` if missing), through ``runuser``.

The binaries are Debian's, ``/usr/lib/postgresql/<version>/bin`` (the newest version present),
or ``initdb`` on ``PATH``. ``.ci/run`` installs them (``scripts/install-postgres.sh``) when
missing. Without them the :func:`postgres_dsn` fixture skips, and under ``CI=true`` fails: the
tests that need it are required in CI, like the UI test.

From a benchmark or a script::

    from tests.postgres_server import postgres_server

    with postgres_server() as server:
        print(server.dsn)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"
"""The system user the server runs as when this process is root (initdb refuses root)."""
START_ATTEMPTS = 3
"""A free port may be taken by another process (another xdist worker) before the server binds
it: start again on another port."""


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's binaries are not installed (or the server user cannot be made)."""


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running server: connect with ``dsn`` (no password: trust on loopback)."""

    dsn: str
    host: str
    port: int
    user: str
    database: str
    bin_dir: Path
    data_dir: Path


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest version, else ``PATH``."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (0,)

    candidates = sorted(
        (d for d in DEBIAN_ROOT.glob("*") if (d / "bin" / "initdb").is_file()),
        key=version,
        reverse=True,
    )
    if candidates:
        return candidates[0] / "bin"
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).parent / "pg_ctl").is_file():
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _service_user() -> tuple[str, int, int] | None:
    """(name, uid, gid) to run the server as, or None to run it as this process's user."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        made = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise PostgresUnavailable(
                f"running as root, and no {SERVICE_USER!r} user to run PostgreSQL as: "
                f"useradd said {made.stderr.strip()!r}"
            ) from None
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _base_dir(as_user: tuple[str, int, int] | None) -> str:
    """Where the temporary folder goes: the usual temp dir, unless the server's user could not
    reach it (a root-only TMPDIR), then ``/tmp``."""
    base = tempfile.gettempdir()
    if as_user is not None and not os.stat(base).st_mode & 0o001:
        return "/tmp"
    return base


@contextmanager
def postgres_server(database: str = "smsp_test") -> Iterator[PostgresServer]:
    """Start a private PostgreSQL server; stop it and delete its files on exit.

    Raises :class:`PostgresUnavailable` when the binaries are missing.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb, no initdb "
            "on PATH): run scripts/install-postgres.sh (apt-get install postgresql)"
        )
    as_user = _service_user()
    prefix = ["runuser", "-u", as_user[0], "--"] if as_user else []
    user = as_user[0] if as_user else _current_user()
    root = Path(tempfile.mkdtemp(prefix="smsp-pg-", dir=_base_dir(as_user)))
    data_dir, socket_dir = root / "data", root / "socket"
    log_file = root / "server.log"
    started = False
    try:
        socket_dir.mkdir()
        if as_user:
            for path in (root, socket_dir):
                os.chown(path, as_user[1], as_user[2])
        os.chmod(root, 0o700)

        def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*prefix, *args],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )

        done = run(
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        # Loopback only, over TCP and the socket in our folder; no durability (a test server).
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{socket_dir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\n"
            )
        port = 0
        for attempt in range(START_ATTEMPTS):
            port = _free_port()
            done = run(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-o",
                f"-p {port}",
                "-w",
                "-t",
                "60",
                "start",
            )
            if done.returncode == 0:
                started = True
                break
            if attempt == START_ATTEMPTS - 1:
                log = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""
                raise RuntimeError(f"pg_ctl start failed: {done.stderr[-2000:]}\n{log}")
        done = run(
            str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database
        )
        if done.returncode != 0:
            raise RuntimeError(f"createdb failed: {done.stderr[-2000:]}")
        yield PostgresServer(
            dsn=f"postgresql://{user}@127.0.0.1:{port}/{database}",
            host="127.0.0.1",
            port=port,
            user=user,
            database=database,
            bin_dir=bin_dir,
            data_dir=data_dir,
        )
    finally:
        if started:
            _stop(prefix, bin_dir, data_dir, root)
        shutil.rmtree(root, ignore_errors=True)


def _stop(prefix: list[str], bin_dir: Path, data_dir: Path, root: Path) -> None:
    """``pg_ctl stop -m fast``; if that fails, SIGQUIT the postmaster (immediate shutdown)."""
    done = subprocess.run(
        [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 0:
        return
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
    except (OSError, ValueError, IndexError):
        return
    for _ in range(100):
        if not pid_file.exists():
            return
        time.sleep(0.1)


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def require_postgres() -> Path:
    """The binaries' folder; skips the test when PostgreSQL is missing (fails under CI=true)."""
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        return bin_dir
    reason = (
        "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): "
        "scripts/install-postgres.sh installs it; this test is REQUIRED in CI"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


SHARED_DSN_VAR = "SMSP_TEST_POSTGRES_DSN"
"""A server already running, used instead of starting one per session: ``make mutation``
starts one for its thousand short test sessions (each test makes a catalog schema of its own)."""


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """One server per test session (per xdist worker), its database's DSN."""
    if os.environ.get(SHARED_DSN_VAR):
        yield os.environ[SHARED_DSN_VAR]
        return
    require_postgres()
    with postgres_server() as server:
        yield server.dsn


def main() -> None:
    """``python -m tests.postgres_server``: start a server, print its DSN, stop it when stdin
    closes (what scripts/mutation.sh does around its runs)."""
    with postgres_server() as server:
        print(server.dsn, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
