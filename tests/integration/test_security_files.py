"""Tenant data at rest outside the database: the report worker's scratch files are private,
locked while in use and swept when a worker died; a download is served only when the stored
key lies under the caller's tenant prefix."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops.errors import ConfigError
from afasa_ops.platform.scratch import default_workdir, prepare_workdir, scratch_file, sweep
from tests.support.api_stack import MASTER_KEY, ApiStack, admin_rows, api_stack
from tests.support.platform_db import PlatformDb
from tests.support.services import NatsServer
from tests.support.workers import WorkerProcess, write_config

HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes stdin
"""


def test_scratch_files_are_0600_in_a_0700_directory_and_removed_after_use(tmp_path: Path) -> None:
    workdir = prepare_workdir(tmp_path / "work")
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    with scratch_file(workdir, "r1.csv") as path:
        assert path.parent == workdir
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.write_bytes(b"tenant A's detections")
    assert not path.exists()


def test_the_default_workdir_is_private_not_the_shared_temp_folder() -> None:
    workdir = prepare_workdir(None)
    assert workdir == default_workdir() and workdir != Path(tempfile.gettempdir())
    st = workdir.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()


def test_the_sweep_removes_dead_workers_files_and_never_a_live_ones(tmp_path: Path) -> None:
    workdir = prepare_workdir(tmp_path / "work")
    abandoned = workdir / "afasa-report-dead.csv.1234abcd.part"
    abandoned.write_bytes(b"x" * 1000)  # as a killed worker leaves it: no lock held
    live = workdir / "afasa-report-live.csv.5678abcd.part"
    live.write_bytes(b"being written")
    unrelated = workdir / "notes.txt"
    unrelated.write_text("not ours")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(live)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert sweep(workdir) == [abandoned]
        assert live.exists() and unrelated.exists() and not abandoned.exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    # The holder is gone, so is its lock: the next sweep takes the file.
    assert sweep(workdir) == [live]


def test_a_workdir_of_another_user_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to uid 65534"):
        prepare_workdir(foreign)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        prepare_workdir(link)


def test_a_report_worker_sweeps_what_a_killed_worker_left_at_start(
    pdb: PlatformDb, nats_server: NatsServer, tmp_path: Path
) -> None:
    workdir = tmp_path / "scratch"
    workdir.mkdir(mode=0o700)
    left = workdir / f"afasa-report-{uuid.uuid4()}.csv.deadbeef.part"
    left.write_bytes(b"partial rows of tenant A\n" * 100)
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{tmp_path}/s",
        workers={"workdir": str(workdir)},
    )
    w = WorkerProcess(cfg, "report", tmp_path / "report.log", [], {}).start()
    try:
        w.wait_healthy()
        assert not left.exists()
    finally:
        w.terminate()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("sec-files")) as s:
            yield s


def test_a_download_whose_key_lies_outside_the_callers_prefix_is_not_served(
    stack: ApiStack,
) -> None:
    a, b = stack.tenant_a, stack.tenant_b
    # B's report file, in storage where B's worker put it.
    key_b = f"tenant/{b}/reports/{uuid.uuid4()}.csv"
    target = stack.storage_dir / key_b
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("tenant B's data\n")
    # A row of A's that points at B's object (a bug, a restore, a hand edit: RLS allows it).
    rows = admin_rows(
        stack.db.admin_dsn,
        "INSERT INTO reports (tenant_id, format, range_from, range_to, status, s3_key) VALUES "
        "(%s, 'csv', now() - interval '1 day', now(), 'ready', %s) RETURNING id",
        (a, key_b),
    )
    rid = rows[0][0]
    as_a = stack.auth(a)
    got = stack.client.get(f"/api/report/reports/{rid}/download", headers=as_a)
    assert got.status_code == 404 and "tenant B" not in got.text
    shown = stack.client.get(f"/api/report/reports/{rid}", headers=as_a).json()
    assert "download_url" not in shown
