"""A private PostgreSQL cluster for fault injection: initdb on a free port with its own data
directory, trust auth, and the faults a test needs: stop, kill -9, restart, hang (SIGSTOP of
the postmaster and every backend) and resume. The machine's shared PostgreSQL is never touched.

PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` user, in a
directory under the system temp folder that user can enter (pytest's tmp_path is root-only).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import free_port, unavailable

PG_BIN = Path(os.environ.get("AFASA_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RUN_AS = "postgres"


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", RUN_AS, "--", *argv]


@dataclass
class PgCluster:
    root: Path
    port: int = field(default_factory=free_port)
    _stopped_pids: list[int] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_owner(list(argv)), capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def init(self) -> PgCluster:
        initdb = PG_BIN / "initdb"
        if not initdb.exists():
            unavailable(f"PostgreSQL server binaries not found in {PG_BIN} (initdb)")
        if os.geteuid() == 0:
            shutil.chown(self.root, RUN_AS, RUN_AS)
        done = self._run(str(initdb), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                         "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        if done.returncode != 0:
            unavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\nfull_page_writes = off\n"
                "shared_buffers = 32MB\nmax_connections = 100\n"
            )
        return self

    def start(self) -> None:
        done = self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                         "-w", "-t", "60", "start")  # fmt: skip
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise RuntimeError(f"private PostgreSQL did not start: {done.stderr} {tail}")
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` ends every session, `immediate` is a crash without a checkpoint."""
        self.resume()
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def postmaster_pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _family(self) -> list[int]:
        """The postmaster and its children (backends, background processes)."""
        top = self.postmaster_pid()
        if top is None:
            return []
        pids = [top]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == top:
                pids.append(int(entry.name))
        return pids

    def kill9(self) -> None:
        """SIGKILL the postmaster (its backends then exit on their own), as a crash would."""
        self.resume()
        for pid in self._family():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _alive(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def hang(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, nothing answers,
        new connections are accepted by the kernel and never served."""
        for pid in self._family():
            with suppress(ProcessLookupError):  # a backend may exit while we look
                os.kill(pid, signal.SIGSTOP)
                self._stopped_pids.append(pid)

    def resume(self) -> None:
        for pid in self._stopped_pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._stopped_pids = []

    def destroy(self) -> None:
        self.resume()
        if self._alive():
            with suppress(subprocess.TimeoutExpired):
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop", timeout_s=20)  # fmt: skip
        if self._alive():
            self.kill9()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    """A started private cluster, destroyed afterwards whatever the test did to it."""
    root = Path(tempfile.mkdtemp(prefix="afasa-pg-"))
    os.chmod(root, 0o755)
    cluster = PgCluster(root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
