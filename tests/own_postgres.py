"""A PostgreSQL server of the test's own, in a temporary folder, that the test may stop, kill and
start again (fault drills). Never the machine's shared server.

``initdb`` and ``pg_ctl`` refuse to run as root, so when the tests run as root (CI) every server
command runs as an unprivileged system user (``postgres`` when it exists) that owns the folder.
The server listens on loopback only, on a free port that stays the same across restarts, with
trust authentication and ``fsync=off``: an immediate stop still keeps every commit, since the
operating system (which does not crash here) holds the WAL that was written.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from events.migrate import migrate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("OwnPostgres", "own_postgres", "own_standby")

_CANDIDATE_USERS = ("postgres", "pgserver", "nobody")


def _bindir() -> Path:
    """Where initdb, pg_ctl and postgres are: ``DIPLOFEED_PG_BINDIR``, the distribution's
    newest PostgreSQL, the ``PATH``, or the binaries that ship with ``pgserver``."""
    configured = os.environ.get("DIPLOFEED_PG_BINDIR")
    if configured:
        return Path(configured)
    distro = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if distro:
        return distro[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _unprivileged() -> pwd.struct_passwd | None:
    """The account server commands run as (``None``: this one, when it is not root)."""
    if os.geteuid() != 0:
        return None
    for name in _CANDIDATE_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no unprivileged account to run PostgreSQL as")


class OwnPostgres:
    """One server in ``folder``; see the module docstring."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = _free_port()
        self.bindir = _bindir()
        self.account = _unprivileged()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60.0) -> str:
        kwargs: dict[str, Any] = {}
        if self.account is not None:
            kwargs = {
                "user": self.account.pw_uid,
                "group": self.account.pw_gid,
                "extra_groups": [],
            }
        done = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.folder,
            env={**os.environ, "LC_ALL": "C"},
            **kwargs,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({done.returncode}): {done.stderr}\n{log[-2000:]}"
            )
        output: str = done.stdout
        return output

    def init(self) -> None:
        """initdb with trust authentication, then the drill's configuration."""
        if self.account is not None:
            os.chown(self.folder, self.account.pw_uid, self.account.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "fsync = off\nfull_page_writes = off\nsynchronous_commit = on\n"
                "max_connections = 100\nshared_buffers = 32MB\n"
                "log_min_messages = warning\n"
                # What a streaming standby (``init_standby``) needs; PostgreSQL's defaults,
                # spelled out.
                "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
            )

    def init_standby(self, primary: OwnPostgres) -> None:
        """A streaming hot standby of ``primary`` (which must be running): ``pg_basebackup -R``
        copies its data folder and writes ``primary_conninfo`` and ``standby.signal``; this
        server then listens on its own port and socket folder."""
        if self.account is not None:
            os.chown(self.folder, self.account.pw_uid, self.account.pw_gid)
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(self.data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as out:
            # Later lines win over the primary's, copied with the rest of its folder.
            out.write(
                f"\nport = {self.port}\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "hot_standby = on\n"
            )

    def start(self) -> None:
        """Start and wait until it accepts connections (crash recovery included)."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop; ``immediate`` is a crash as far as clients and recovery are concerned."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """``pg_ctl restart``: stop in ``mode``, start, wait until it accepts connections."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "60",
            "restart",
        )  # fmt: skip

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from its pid file (``None``: not running)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def ensure_stopped(self) -> None:
        """Stop it whatever state it is in: pg_ctl first, then SIGKILL to our own postmaster."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        with contextlib.suppress(Exception):
            self.stop("immediate")
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


@contextlib.asynccontextmanager
async def own_postgres(*, migrated: bool = True) -> AsyncIterator[OwnPostgres]:
    """A started server of our own (its ``postgres`` database migrated if asked); stopped and
    deleted when the block ends, however it ends."""
    folder = Path(tempfile.mkdtemp(prefix="diplofeed-drill-"))
    server = OwnPostgres(folder)
    try:
        server.init()
        server.start()
        if migrated:
            conn = await asyncpg.connect(server.url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        yield server
    finally:
        server.ensure_stopped()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def own_standby(primary: OwnPostgres) -> AsyncIterator[OwnPostgres]:
    """A started streaming hot standby of ``primary`` (``OwnPostgres.init_standby``); stopped
    and deleted when the block ends, however it ends."""
    folder = Path(tempfile.mkdtemp(prefix="diplofeed-standby-"))
    server = OwnPostgres(folder)
    try:
        server.init_standby(primary)
        server.start()
        yield server
    finally:
        server.ensure_stopped()
        shutil.rmtree(folder, ignore_errors=True)
