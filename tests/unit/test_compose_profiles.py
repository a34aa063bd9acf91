"""Services under a Compose profile count only when COMPOSE_PROFILES enables it: the
reference stack carries AFASA's stubs under `stubs` beside afasa-ops' own `api`, and Traefik
can only list routers of containers a plain `up` starts."""

from __future__ import annotations

from pathlib import Path

from afasa_ops.compose.project import load_project
from afasa_ops.traefik.routing import expected_routing

ROOT = Path(__file__).resolve().parents[2]


def test_stub_routers_are_expected_only_with_their_profile(tmp_path: Path) -> None:
    stack = tmp_path / "afasa"
    stack.mkdir()
    (stack / "docker-compose.yml").write_text((ROOT / "compose/docker-compose.yml").read_text())
    env = {"AFASA_STACK": "afasa", "COMPOSE_PROFILES": "demo"}
    (stack / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))

    default = load_project(stack, environ={})
    assert default.active_profiles == {"demo"}
    assert "ubibot" in default.active_services and "tb-adapter" not in default.active_services
    assert expected_routing(default).routers == ["api@docker"]

    with_stubs = load_project(stack, environ={"COMPOSE_PROFILES": "demo,stubs"})
    assert {"tb-adapter", "report", "api"} <= set(with_stubs.active_services)
    assert expected_routing(with_stubs).routers == [
        "api@docker",
        "report@docker",
        "tb-adapter@docker",
    ]
    # No COMPOSE_PROFILES at all: only services without profiles.
    (stack / ".env").write_text("AFASA_STACK=afasa\n")
    bare = load_project(stack, environ={})
    assert bare.active_profiles == set()
    assert not {"ubibot", "thingsboard", "tb-adapter", "report"} & set(bare.active_services)
