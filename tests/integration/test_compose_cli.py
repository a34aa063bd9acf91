"""The Compose driver against the real docker-compose and docker compose: the version is asked
once per installed binary (v2: the docker CLI and wherever its plugin may be), not once per run
(a v1 process takes about a second to start, v2 tens of milliseconds)."""

from __future__ import annotations

import json
import os
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
cli = ComposeCli(shell, Path("."), [], "p", sys.argv[2], version_cache=Path(sys.argv[1]))
print(json.dumps({"version": cli.version(), "asked": [r.argv for r in shell.records]}))
"""


def detect(
    cache: Path, command: str = "docker-compose", env: dict[str, str] | None = None
) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache), command],
        capture_output=True,
        text=True,
        check=True,
        env=env,
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


def test_v2_version_is_remembered_until_the_cli_or_its_plugin_places_change(
    tmp_path: Path,
) -> None:
    from tests.support import docker_fixtures as dx

    dx.require_compose("v2")
    cache = tmp_path / "compose-version.json"
    first = detect(cache, "docker compose")
    assert first["asked"] == [["docker", "compose", "version", "--short"]]
    assert first["version"] == dx.compose_version("v2")
    assert detect(cache, "docker compose") == {"version": first["version"], "asked": []}
    # A docker CLI config of its own (its config.json can name more plugin directories):
    # the plugin found may differ, so it is asked again.
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    assert detect(cache, "docker compose", env) == first
    assert detect(cache, "docker compose", env)["asked"] == []


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
