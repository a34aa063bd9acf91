"""The Compose driver against the real docker-compose: v1's version is asked once per
installed binary, not once per run (a v1 process takes about a second to start)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.services import unavailable

# A fresh process per call: detection is also remembered per process.
PROBE = """
import json, sys
from pathlib import Path
from afasa_ops.infra.compose import ComposeCli
from afasa_ops.infra.shell import Shell
shell = Shell()
cli = ComposeCli(shell, Path("."), [], "p", "docker-compose", version_cache=Path(sys.argv[1]))
print(json.dumps({"version": cli.version(), "asked": [r.argv for r in shell.records]}))
"""


def detect(cache: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(proc.stdout))


def test_v1_version_is_remembered_per_binary(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose (v1) is not installed: run scripts/docker-engine.sh")
    cache = tmp_path / "compose-version.json"
    first = detect(cache)
    assert first["asked"] == [["docker-compose", "version", "--short"]]
    assert str(first["version"]).startswith("1.")
    second = detect(cache)
    assert second == {"version": first["version"], "asked": []}
    # Another binary (an upgrade changes size or mtime) is asked again.
    stale = json.loads(cache.read_text())
    cache.write_text(json.dumps({**stale, "binary": stale["binary"] + "0", "version": "0.0.1"}))
    third = detect(cache)
    assert third == first


AUTO = """
import json
from pathlib import Path
from afasa_ops.infra.compose import ComposeCli
from afasa_ops.infra.shell import Shell
cli = ComposeCli(Shell(), Path("."), [], "p", "auto")
print(json.dumps({"binary": cli.binary(), "v1": cli.is_v1, "version": cli.version()}))
"""


def test_auto_prefers_compose_v2_when_the_plugin_is_installed() -> None:
    from tests.support import docker_fixtures as dx

    dx.require_compose("v2")
    proc = subprocess.run([sys.executable, "-c", AUTO], capture_output=True, text=True, check=True)
    found = json.loads(proc.stdout)
    assert found["binary"] == ["docker", "compose"] and found["v1"] is False
    assert found["version"] == dx.compose_version("v2")
    assert str(found["version"]).startswith("2.")
