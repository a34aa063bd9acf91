"""Round-trip edits of the contract-shaped compose file: golden diffs, nothing else moves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from afasa_ops.compose.edit import Edit, EditError, edit_text
from afasa_ops.compose.project import load_project
from afasa_ops.errors import UsageError
from afasa_ops.files import unified_diff
from afasa_ops.traefik.analysis import analyse
from afasa_ops.traefik.fix import compose_changes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "afasa"

GOLDEN_EXAMPLE_DIFF = """\
--- a/docker-compose.yml
+++ b/docker-compose.yml
@@ -8,13 +8,11 @@
   #  Edge: reverse proxy
   # ---------------------------------------------------------------------------
   traefik:
-    image: traefik:latest
-    environment:
-      - DOCKER_API_VERSION=1.45   # workaround for Docker 29 (does not work)
+    image: traefik:v3.6.7
     command:
       - "--providers.docker=true"
       - "--providers.docker.exposedbydefault=false"
-      - "--providers.docker.network=afasa2_afasa_net"
+      - "--providers.docker.network=afasa-main_afasa_net"
       - "--api.insecure=true"
       - "--entrypoints.web.address=:80"
     ports:
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "Afasa-main"))


def test_example_fix_is_the_golden_diff(checkout: Path) -> None:
    project = load_project(checkout, environ={})
    changes = compose_changes(analyse(project, target_image="traefik:v3.6.7"), checkout)
    assert len(changes) == 1
    assert changes[0].diff == GOLDEN_EXAMPLE_DIFF
    # Banners, comments and every other line survive byte for byte.
    old_lines = changes[0].old.splitlines()
    new_lines = changes[0].new.splitlines()
    assert [ln for ln in old_lines if ln.lstrip().startswith("#")] == [
        ln for ln in new_lines if ln.lstrip().startswith("#")
    ]
    assert len(old_lines) - len(new_lines) == 2


def test_project_name_from_dotenv_changes_the_network(checkout: Path) -> None:
    (checkout / ".env").write_text("COMPOSE_PROJECT_NAME=afasa2\n")
    project = load_project(checkout, environ={})
    analysis = analyse(project, target_image="traefik:v3.6.7")
    assert "traefik.network_mismatch" not in {f.code for f in analysis.findings}
    diff = compose_changes(analysis, checkout)[0].diff
    assert "afasa2_afasa_net" not in diff


def test_top_level_name_is_normalised(checkout: Path) -> None:
    compose = checkout / "docker-compose.yml"
    compose.write_text('name: "AFASA 2.0"\n' + compose.read_text())
    project = load_project(checkout, environ={})
    diff = compose_changes(analyse(project, target_image="traefik:v3.6.7"), checkout)[0].diff
    assert '+      - "--providers.docker.network=afasa20_afasa_net"' in diff


def test_flow_list_and_single_quotes_keep_their_style() -> None:
    text = (
        "services:\n"
        "  proxy:  # the edge\n"
        "    image: 'traefik:latest'  # floating\n"
        "    command: ['--providers.docker=true', '--providers.docker.network=old_net', '--api']\n"
        "    environment: [DOCKER_API_VERSION=1.45, TZ=UTC]\n"
    )
    new = edit_text(
        text,
        [
            Edit("set", ("services", "proxy", "image"), "traefik:v3.6.7"),
            Edit("set", ("services", "proxy", "command", 1), "--providers.docker.network=p_net"),
            Edit("delete", ("services", "proxy", "environment", 0)),
        ],
        "docker-compose.yml",
    )
    assert new == (
        "services:\n"
        "  proxy:  # the edge\n"
        "    image: 'traefik:v3.6.7'  # floating\n"
        "    command: ['--providers.docker=true', '--providers.docker.network=p_net', '--api']\n"
        "    environment: [TZ=UTC]\n"
    )


def test_environment_mapping_loses_only_its_line() -> None:
    text = (
        "services:\n"
        "  traefik:\n"
        "    image: traefik:v3.6.7\n"
        "    environment:\n"
        "      TZ: UTC\n"
        '      DOCKER_API_VERSION: "1.45"   # hack\n'
        "      # keep me\n"
        "      LOG: debug\n"
        "\n"
        "  # ---- banner ----\n"
        "  app:\n"
        "    image: app:1\n"
    )
    new = edit_text(
        text, [Edit("delete", ("services", "traefik", "environment", "DOCKER_API_VERSION"))], "f"
    )
    assert new == text.replace('      DOCKER_API_VERSION: "1.45"   # hack\n', "")


def test_deleting_a_whole_key_keeps_the_next_banner() -> None:
    text = (
        "services:\n"
        "  traefik:\n"
        "    environment:\n"
        "    - DOCKER_API_VERSION=1.45\n"
        "    image: traefik:latest\n"
        "  # ---- banner ----\n"
        "  app:\n"
        "    environment:\n"
        "      A: b\n"
    )
    new = edit_text(text, [Edit("delete", ("services", "traefik", "environment"))], "f")
    assert new == text.replace("    environment:\n    - DOCKER_API_VERSION=1.45\n", "")


def test_anchor_shared_with_other_services_is_refused() -> None:
    text = (
        "x-env: &common\n"
        "  - DOCKER_API_VERSION=1.45\n"
        "services:\n"
        "  traefik:\n"
        "    image: traefik:latest\n"
        "    environment: *common\n"
        "  app:\n"
        "    environment: *common\n"
    )
    with pytest.raises(EditError, match="anchor &common"):
        edit_text(text, [Edit("delete", ("services", "traefik", "environment", 0))], "f.yml")


def test_merge_key_value_is_refused() -> None:
    text = (
        "x-base: &base\n"
        "  restart: always\n"
        "  image: traefik:latest\n"
        "services:\n"
        "  traefik:\n"
        "    <<: *base\n"
        "    ports: ['80:80']\n"
    )
    with pytest.raises(EditError, match="merge key"):
        edit_text(text, [Edit("set", ("services", "traefik", "image"), "traefik:v3.6.7")], "f.yml")


def test_block_scalar_is_refused_not_half_edited() -> None:
    text = "services:\n  t:\n    command: >\n      --providers.docker.network=x\n"
    with pytest.raises(EditError, match="block scalar"):
        edit_text(text, [Edit("set", ("services", "t", "command"), "--x")], "f.yml")


def test_malformed_yaml_names_line_and_column() -> None:
    with pytest.raises(UsageError, match=r"bad\.yml: invalid YAML at line 4, column 4"):
        edit_text("services:\n  t:\n    image: [a\n  x: 1\n", [Edit("delete", ("x",))], "bad.yml")


def test_malformed_compose_file_is_refused_by_the_loader(checkout: Path) -> None:
    compose = checkout / "docker-compose.yml"
    compose.write_text("services:\n  traefik:\n    image: traefik:latest\n   bad: [\n")
    with pytest.raises(
        UsageError, match=r"docker-compose.yml: invalid YAML at line \d+, column \d+"
    ):
        load_project(checkout, environ={})


def test_no_edits_returns_the_text_unchanged() -> None:
    assert edit_text("a: 1\n", [], "f") == "a: 1\n"


def test_unified_diff_helper_matches_the_edit() -> None:
    text = "services:\n  t:\n    image: traefik\n"
    new = edit_text(text, [Edit("set", ("services", "t", "image"), "traefik:v3.6.7")], "f")
    changed = [ln for ln in unified_diff(text, new, "f").splitlines()[2:] if ln[:1] in "+-"]
    assert changed == ["-    image: traefik", "+    image: traefik:v3.6.7"]
