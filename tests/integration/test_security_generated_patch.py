"""Generated hostile bundles and work trees for `patch apply`: entry names drawn from normal
and hostile components (`..`, aliases of `.git`, 300-byte names, NUL, drive letters, deep
paths) and repos whose folders are symlinks to a place outside (ignored or untracked). The
property: either the apply is refused with exit 2, one line, and nothing changed (repo, HEAD,
the outside folder), or it applied exactly (every file the bundle holds is in the repo byte
for byte) and nothing outside changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afasa_ops.commands.patch import apply_patch
from afasa_ops.config import load_settings
from afasa_ops.errors import AfasaOpsError, ExitCode
from afasa_ops.runbook.context import Context, Options
from tests.support.patch_bundles import snapshot, write_config

BASE = {
    "docker-compose.yml": b"services:\n  app:\n    image: app:1\n",
    "services/app/main.py": b"print('v1')\n",
    "docs/README.md": b"# docs\n",
}
FOLDERS = ["cache", "vendor", "services/app", "docs", "build"]

NORMAL = st.from_regex(r"[a-z][a-z0-9_-]{0,8}(\.[a-z]{1,3})?", fullmatch=True)
HOSTILE = st.sampled_from(
    [
        "..", ".", "", ".git", ".GIT", ".Git", ".git ", ".git.", ".git..", "GIT~1", ".g\u200cit",
        ".git::$DATA", ".afasa-ops", ".AFASA-OPS", "n" * 256, "é" * 128, "a\x00b", "C:",
        "cache", "vendor", "docs", "build", "services", "__MACOSX",
    ]
)  # fmt: skip
COMPONENT = st.one_of(NORMAL, NORMAL, HOSTILE)
NAME = st.one_of(
    st.lists(COMPONENT, min_size=1, max_size=5).map("/".join),
    st.integers(min_value=60, max_value=300).map(lambda n: "/".join(["d"] * n) + "/f"),
    st.sampled_from(["/etc/passwd", "\\windows\\x", "C:/x", "a\\..\\..\\b"]),
)
ENTRIES = st.dictionaries(NAME, st.binary(max_size=64), min_size=1, max_size=6)
LINKS = st.dictionaries(st.sampled_from(FOLDERS), st.booleans(), max_size=3)  # folder -> ignored


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root: Path, links: dict[str, bool], outside: Path) -> Path:
    repo = root / "repo"
    for rel, data in BASE.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    ignored = [f"{folder}/" for folder, is_ignored in links.items() if is_ignored]
    (repo / ".gitignore").write_text("".join(f"{i}\n" for i in ignored))
    git(repo.parent, "init", "-q", "-b", "fix", str(repo))
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "base")
    git(repo, "config", "user.email", "t@t")
    git(repo, "config", "user.name", "t")
    for folder in links:
        target = repo / folder
        if target.exists():
            shutil.rmtree(target)  # a tracked folder swapped for a link: the work tree lies
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(outside, target)
    return repo


def make_bundle(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in BASE.items():
            zf.writestr(rel, data)
        for name, data in entries.items():
            # zipfile itself strips a leading "/" and cannot write an entry left nameless.
            if name not in BASE and zipfile.ZipInfo(name).filename:
                zf.writestr(name, data)
    return path


def listing(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@given(entries=ENTRIES, links=LINKS)
@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_a_generated_bundle_is_refused_cleanly_or_applied_exactly(
    entries: dict[str, bytes], links: dict[str, bool]
) -> None:
    with tempfile.TemporaryDirectory(prefix="afasa-gen-patch-") as tmp:
        root = Path(tmp)
        outside = root / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_bytes(b"not the repo's\n")
        repo = make_repo(root, links, outside)
        bundle = make_bundle(root / "bundle.zip", entries)
        before, outside_before = snapshot(repo), listing(outside)
        head = git(repo, "rev-parse", "HEAD")
        ctx = Context(load_settings(write_config(root, repo)), Options(yes=True, allow_dirty=True))
        try:
            result = apply_patch(ctx, None, bundle)
        except AfasaOpsError as exc:
            assert exc.exit_code == ExitCode.USAGE, str(exc)
            assert "\n" not in str(exc) and len(str(exc)) < 1000
            assert snapshot(repo) == before and git(repo, "rev-parse", "HEAD") == head
        else:
            applied = {p for g in result.groups for p in g.paths}
            for rel in applied:
                wanted = result.plan.bundle.files[rel].data
                assert (repo / rel).read_bytes() == wanted, rel
            assert not any(Path(p).parts[0] in links for p in applied)
        assert listing(outside) == outside_before
