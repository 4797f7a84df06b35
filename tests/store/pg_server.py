"""A throwaway PostgreSQL server for the store tests, started from the system binaries.

    server = PgServer.start()          # initdb + pg_ctl start, on 127.0.0.1:<free port>
    url = server.create_database()     # a fresh, empty database per test
    server.stop()                      # stops the postmaster it started, deletes its directory

The binaries come from ``PATH`` or Debian's ``/usr/lib/postgresql/<ver>/bin``.
If there are none, :func:`find_or_install_binaries` installs the system
package (``apt-get install postgresql``, as root, with a timeout) and otherwise
raises :class:`Unavailable` with the reason, which the fixture turns into a skip.

initdb and the server refuse to run as root: as root they run as the
``postgres`` user that Debian's package creates (``runuser``), in a directory
under the system temp dir handed to that user. The server is tuned for tests
(no fsync, trust authentication on loopback, no Unix socket).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PgServer", "Unavailable", "find_or_install_binaries"]

SUPERUSER = "fluvial"
INSTALL_TIMEOUT_S = 600
START_TIMEOUT_S = 60


class Unavailable(Exception):
    """No PostgreSQL server can be started here; the message says why."""


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name  # /usr/lib/postgresql/<ver>/bin
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(p) for p in debian]
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _apt_get(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", "-q", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _install() -> str:
    """Install Debian's ``postgresql`` package; return what went wrong, or ``""``."""
    if os.geteuid() != 0:
        return "not root, so `apt-get install -y postgresql` cannot be run"
    if shutil.which("apt-get") is None:
        return "no apt-get on this system to install the postgresql package"
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    install = ("install", "-y", "--no-install-recommends", "postgresql")
    try:
        done = _apt_get(*install, timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:  # a clean machine has no package lists yet
            _apt_get("update", timeout=max(1.0, deadline - time.monotonic()))
            done = _apt_get(*install, timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return f"`apt-get install -y postgresql` did not finish within {INSTALL_TIMEOUT_S} s"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return "`apt-get install -y postgresql` failed: " + " / ".join(tail)
    return ""


def find_or_install_binaries() -> Path:
    """The server binaries, installing the system package if needed; else ``Unavailable``."""
    found = find_binaries()
    if found is not None:
        return found
    problem = _install()
    found = find_binaries()
    if found is None:
        raise Unavailable(problem or "installed postgresql, but found no initdb/pg_ctl/postgres")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, left for a parent to reap, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class PgServer:
    """One postmaster on ``127.0.0.1:port`` with its data under ``root``."""

    bin_dir: Path
    root: Path
    port: int = 0
    owner: pwd.struct_passwd | None = None  # who runs it, when we are root
    postmaster_pid: int | None = None
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))
    _admin: object | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def start(cls, bin_dir: Path) -> PgServer:
        """initdb a new cluster in a temp directory and start it; ``Unavailable`` if impossible."""
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable(
                    "running as root and there is no 'postgres' user to run initdb as"
                ) from None
            if shutil.which("runuser") is None:
                raise Unavailable("running as root and there is no runuser to drop to 'postgres'")
        root = Path(tempfile.mkdtemp(prefix="fluvial-pg-"))
        server = cls(bin_dir=bin_dir, root=root, owner=owner)
        try:
            if owner is not None:
                os.chown(root, owner.pw_uid, owner.pw_gid)
            server._initdb()
            server._start_on_a_free_port()
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, *argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner.pw_name, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root
        )

    def _initdb(self) -> None:
        done = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# fluvial tests: a throwaway server\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 100\n"
            )

    def _start_on_a_free_port(self) -> None:
        for attempt in range(3):
            self.port = _free_port()
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(f"port = {self.port}\n")  # the last setting wins
            done = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
                timeout=START_TIMEOUT_S + 10,
            )
            self._read_postmaster_pid()
            if done.returncode == 0:
                return
            if attempt == 2 or "could not bind" not in self._log_tail():
                raise RuntimeError(
                    f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{self._log_tail()}"
                )

    def _read_postmaster_pid(self) -> None:
        try:
            self.postmaster_pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the postmaster this object started (only it) and delete the directory."""
        if self._admin is not None:
            self._admin.close()  # type: ignore[attr-defined]
            self._admin = None
        if self.postmaster_pid is not None and self.data.exists():
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30
                )
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + 10
            while _pid_alive(self.postmaster_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _pid_alive(self.postmaster_pid):
                os.kill(self.postmaster_pid, signal.SIGKILL)
            self.postmaster_pid = None
        shutil.rmtree(self.root, ignore_errors=True)

    def pause(self) -> None:
        """Stop the postmaster (fast shutdown: clients are cut off), keeping its data."""
        done = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{done.stdout}\n{done.stderr}")
        self._admin = None  # its connection died with the server

    def resume(self) -> None:
        """Start the paused postmaster again, on the same port."""
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t",
                         str(START_TIMEOUT_S), "start", timeout=START_TIMEOUT_S + 10)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n"
                               f"{self._log_tail()}")
        self._read_postmaster_pid()

    # -- databases -------------------------------------------------------------------------

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        if self._admin is None:
            self._admin = psycopg.connect(self.url(), autocommit=True)
        name = f"t{next(self._names)}"
        self._admin.execute(f"CREATE DATABASE {name}")  # type: ignore[attr-defined]
        return self.url(name)
