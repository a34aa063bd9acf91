"""Patch bundles in the AFASA shape, built by the tests: the operators' patched copy of
examples/afasa (wrapped in Afasa-main/ like a GitHub download), and hostile variants."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "afasa"
RUNBOOK = ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"

DB = "feat(db): add devices registry + RLS"
TB = "feat(tb_adapter): implement ubibot sync + device state APIs"
REPORT = "feat(report): async generation via NATS worker"
COMPOSE = "chore(compose): pin traefik + fix network discovery"
REST = "chore: apply remaining patch bundle changes"

# The files each commit group must hold after applying the bundle from patched_tree().
EXPECTED_GROUPS: dict[str, list[str]] = {
    DB: ["infra/postgres/init/003_devices.sql", "services/common/models.py"],
    TB: ["services/tb_adapter/app/main.py", "services/tb_adapter/app/sync.py"],
    REPORT: ["services/report/app/main.py", "services/report/app/worker.py"],
    COMPOSE: ["docker-compose.yml"],
    REST: ["docs/PATCH-NOTES.md"],
}

DEVICES_SQL = """\
-- The device registry, with row-level security enforced for the application role.
CREATE TABLE IF NOT EXISTS devices (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    external_id text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    UNIQUE (tenant_id, external_id)
);
ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE devices FORCE ROW LEVEL SECURITY;
"""


def patched_tree(parent: Path, name: str = "Afasa-main") -> Path:
    """The operators' patched copy of the example: one change set per commit group."""
    root = parent / name
    shutil.copytree(EXAMPLE, root)
    (root / "infra/postgres/init/003_devices.sql").write_text(DEVICES_SQL)
    models = root / "services/common/models.py"
    models.write_text(models.read_text() + "\n\nclass Device:\n    external_id: str\n")
    tb = root / "services/tb_adapter/app/main.py"
    tb.write_text(tb.read_text() + "\n# device state APIs: GET/PUT /devices/{id}/state\n")
    (root / "services/tb_adapter/app/sync.py").write_text('"""UbiBot sync."""\n')
    report = root / "services/report/app/main.py"
    report.write_text(report.read_text() + "\n# generation is queued on NATS, not run inline\n")
    (root / "services/report/app/worker.py").write_text('"""Report worker."""\n')
    compose = root / "docker-compose.yml"
    compose.write_text(
        compose.read_text()
        .replace("image: traefik:latest", "image: traefik:v3.6.7")
        .replace("afasa2_afasa_net", "afasa-main_afasa_net")
    )
    (root / "docs").mkdir()
    (root / "docs/PATCH-NOTES.md").write_text("# Patch notes\n")
    return root


def zip_tree(tree: Path, zip_path: Path, prefix: str | None = None) -> Path:
    """Zip a folder; entries are named `<prefix>/<rel>` (prefix defaults to the folder name)."""
    top = tree.name if prefix is None else prefix
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(tree.rglob("*")):
            rel = path.relative_to(tree).as_posix()
            arc = f"{top}/{rel}" if top else rel
            if path.is_dir():
                zf.write(path, arc + "/")
            else:
                zf.write(path, arc)
    return zip_path


def zip_entries(zip_path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return zip_path


def hostile_zip(
    zip_path: Path, base_tree: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]]
) -> Path:
    """A real patched bundle plus hostile entries (appended after the good ones)."""
    zip_tree(base_tree, zip_path)
    with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as zf:
        for info, data in extra:
            zf.writestr(info, data)
    return zip_path


def special_entry(name: str, file_type: int) -> zipfile.ZipInfo:
    """A zip entry whose Unix mode says symlink, character device..."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (file_type | 0o777) << 16
    return info


def lying_zip(zip_path: Path, name: str, data: bytes, declared: int) -> Path:
    """One entry whose headers declare `declared` bytes while the stream holds all of `data`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    raw = bytearray(buf.getvalue())
    real = len(data).to_bytes(4, "little")
    fake = declared.to_bytes(4, "little")
    # Local header: uncompressed size at offset 22; central directory: at offset 24.
    assert raw[22:26] == real
    raw[22:26] = fake
    central = raw.rfind(b"PK\x01\x02")
    assert raw[central + 24 : central + 28] == real
    raw[central + 24 : central + 28] = fake
    zip_path.write_bytes(bytes(raw))
    return zip_path


def snapshot(repo: Path) -> dict[str, object]:
    """Everything an apply could change: the files (outside .git/.afasa-ops), HEAD, the index."""
    files = {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and p.relative_to(repo).parts[0] not in (".git", ".afasa-ops")
    }
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    return {"files": files, "head": head, "status": status}


def write_config(tmp: Path, repo: Path, extra: str = "") -> Path:
    cfg = tmp / "afasa-ops.toml"
    cfg.write_text(f'[repo]\npath = "{repo}"\n\n[runbook]\npath = "{RUNBOOK}"\n\n{extra}')
    return cfg


def log_groups(repo: Path, count: int) -> list[tuple[str, list[str]]]:
    """The last `count` commits as (subject, sorted files), oldest first."""
    out = subprocess.run(
        ["git", "log", f"-{count}", "--name-only", "--format=%x00%s"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commits = []
    for block in out.split("\x00")[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        commits.append((lines[0], sorted(lines[1:])))
    return list(reversed(commits))
