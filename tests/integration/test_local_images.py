"""The locally built images (compose/images/build.sh) behave as the stack expects.

They stand in for registry images that cannot be pulled here, so each test checks the
contract the AFASA compose file relies on: Traefik's version, NATS with JetStream and its
monitor port, PostgreSQL's official-image init contract, SeaweedFS' S3 port with signatures.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import docker_fixtures as dx


@pytest.fixture(scope="module", autouse=True)
def engine() -> str:
    return dx.require_docker()


@pytest.fixture
def boxes() -> Iterator[dx.Containers]:
    with dx.containers() as box:
        yield box


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="afasa-img-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("tag", [dx.TRAEFIK_BROKEN, dx.TRAEFIK_FIXED])
def test_traefik_image_prints_its_version(tag: str) -> None:
    dx.require_images(tag)
    out = dx.docker("run", "--rm", tag, "version").stdout
    assert f"Version:      {tag.split(':v')[1]}" in out


def test_nats_runs_jetstream_with_monitoring(boxes: dx.Containers) -> None:
    dx.require_images(dx.NATS_IMAGE)
    name = boxes.run("nats", dx.NATS_IMAGE, "-js", "-m", "8222", options=("-p", "127.0.0.1::8222"))
    base = f"http://127.0.0.1:{dx.host_port(name, '8222/tcp')}"
    dx.wait_for(
        "NATS /healthz?js-enabled-only=true",
        lambda: dx.http_get(f"{base}/healthz?js-enabled-only=true")[0] == 200,
        diagnose=lambda: dx.logs(name),
    )
    status, body = dx.http_get(f"{base}/jsz")
    assert status == 200
    assert json.loads(body)["config"]["store_dir"]


# ---- PostgreSQL: the official image's init contract ------------------------------------

PG_ENV = ("-e", "POSTGRES_USER=afasa", "-e", "POSTGRES_PASSWORD=s3cret", "-e", "POSTGRES_DB=afasa")


def _psql(name: str, sql: str, password: str = "s3cret") -> subprocess.CompletedProcess[str]:
    # Over TCP (-h 127.0.0.1), so the password rule for remote clients is what is tested.
    return dx.docker(
        "exec", "-e", f"PGPASSWORD={password}", name,
        "psql", "-h", "127.0.0.1", "-U", "afasa", "-d", "afasa", "-Atc", sql,
        check=False,
    )  # fmt: skip


def _start_pg(boxes: dx.Containers, volume: str, initdb: Path, role: str = "pg") -> str:
    name = boxes.run(
        role,
        dx.POSTGRES_IMAGE,
        options=(*PG_ENV, "-v", f"{volume}:/var/lib/postgresql/data",
                 "-v", f"{initdb}:/docker-entrypoint-initdb.d:ro"),
    )  # fmt: skip
    dx.wait_for(
        "pg_isready over TCP",
        lambda: dx.docker(
            "exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "afasa", "-d", "afasa",
            check=False,
        ).returncode == 0,
        deadline_s=60,
        diagnose=lambda: dx.logs(name),
    )  # fmt: skip
    return name


def test_postgres_initialises_once_and_honours_env(boxes: dx.Containers, scratch_dir: Path) -> None:
    dx.require_images(dx.POSTGRES_IMAGE)
    (scratch_dir / "01-schema.sql").write_text(
        'CREATE EXTENSION IF NOT EXISTS "uuid-ossp";\n'
        "CREATE TABLE init_runs (id serial PRIMARY KEY, by text DEFAULT current_user);\n"
        "INSERT INTO init_runs DEFAULT VALUES;\n"
    )
    (scratch_dir / "02-more.sh").write_text(
        'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
        "-c 'INSERT INTO init_runs DEFAULT VALUES'\n"
    )
    volume = boxes.volume("pgdata")
    first = _start_pg(boxes, volume, scratch_dir)
    assert _psql(first, "SELECT count(*) FROM init_runs").stdout.strip() == "2"
    assert _psql(first, "SHOW listen_addresses").stdout.strip() == "*"
    assert _psql(first, "SELECT uuid_generate_v4() IS NOT NULL").stdout.strip() == "t"
    wrong = _psql(first, "SELECT 1", password="wrong")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    assert "docker-entrypoint-initdb.d/01-schema.sql" in dx.logs(first)

    # A second container on the same, now non-empty volume must not run init again.
    boxes.remove(first)
    second = _start_pg(boxes, volume, scratch_dir, role="pg2")
    assert _psql(second, "SELECT count(*) FROM init_runs").stdout.strip() == "2"
    assert "skipping init scripts" in dx.logs(second)


def test_postgres_init_stops_on_first_sql_error(boxes: dx.Containers, scratch_dir: Path) -> None:
    dx.require_images(dx.POSTGRES_IMAGE)
    (scratch_dir / "01-bad.sql").write_text("SELECT 1;\nSELECT * FROM no_such_table;\n")
    (scratch_dir / "02-never.sql").write_text("CREATE TABLE must_not_exist (id int);\n")
    name = boxes.run(
        "pgbad", dx.POSTGRES_IMAGE,
        options=(*PG_ENV, "-v", f"{scratch_dir}:/docker-entrypoint-initdb.d:ro"),
    )  # fmt: skip

    def exited() -> bool:
        state = dx.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout
        return state.split()[0] == "exited"

    dx.wait_for("the postgres container to exit on the failing init SQL", exited, deadline_s=60)
    exit_code = dx.docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
    assert exit_code != "0"
    text = dx.logs(name)
    assert 'relation "no_such_table" does not exist' in text
    assert "02-never.sql" not in text


def test_postgres_image_has_pg_isready() -> None:
    dx.require_images(dx.POSTGRES_IMAGE)
    proc = dx.docker("run", "--rm", "--entrypoint", "pg_isready", dx.POSTGRES_IMAGE, "--version")
    assert "PostgreSQL) 15." in proc.stdout


# ---- SeaweedFS S3 ----------------------------------------------------------------------

S3_KEY, S3_SECRET = "AKIDAFASATEST", "afasa-test-secret"


def _curl_s3(url: str, secret: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{S3_KEY}:{secret}",
         "-w", "\n%{http_code}", *args, url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_seaweedfs_serves_signed_s3_on_8333(boxes: dx.Containers, scratch_dir: Path) -> None:
    dx.require_images(dx.SEAWEEDFS_IMAGE)
    if shutil.which("curl") is None:
        dx.unavailable("curl (with --aws-sigv4) is needed to sign S3 requests")
    identity = {
        "name": "afasa",
        "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (scratch_dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
    config = f"{scratch_dir / 's3.json'}:/etc/seaweedfs/s3.json:ro"
    name = boxes.run("s3", dx.SEAWEEDFS_IMAGE, options=("-p", "127.0.0.1::8333", "-v", config))
    base = f"http://127.0.0.1:{dx.host_port(name, '8333/tcp')}"
    # Anonymous requests are refused once the S3 gateway is up: proof that auth is on.
    dx.wait_for(
        "SeaweedFS S3 on 8333 to refuse an anonymous request",
        lambda: dx.http_get(f"{base}/")[0] == 403,
        deadline_s=60,
        diagnose=lambda: dx.logs(name)[-2000:],
    )
    # The bucket may take a moment after the gateway answers (filer registration).
    dx.wait_for(
        "a signed bucket creation",
        lambda: _curl_s3(f"{base}/afasa-reports", S3_SECRET, "-X", "PUT").stdout.endswith("200"),
        deadline_s=30,
    )
    payload = b"report body"
    put = _curl_s3(
        f"{base}/afasa-reports/r1.pdf", S3_SECRET, "-X", "PUT", "--data-binary", payload.decode(),
        "-H", f"x-amz-content-sha256: {hashlib.sha256(payload).hexdigest()}",
    )  # fmt: skip
    assert put.stdout.endswith("200"), put.stdout + put.stderr
    got = _curl_s3(f"{base}/afasa-reports/r1.pdf", S3_SECRET)
    assert got.stdout == "report body\n200"
    forged = _curl_s3(f"{base}/afasa-reports/r1.pdf", "not-the-secret")
    assert forged.stdout.endswith("403") and "SignatureDoesNotMatch" in forged.stdout
