"""Hostile and malformed bundles: each refused with one line, and nothing written."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from afasa_ops.commands.patch import apply_patch
from afasa_ops.config import load_settings
from afasa_ops.errors import ExitCode
from afasa_ops.patch.bundle import BundleRefused, Limits, read_bundle
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from tests.support.patch_bundles import (
    RUNBOOK,
    hostile_zip,
    lying_zip,
    patched_tree,
    snapshot,
    special_entry,
    write_config,
    zip_entries,
    zip_tree,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return patched_tree(tmp_path / "bundle")


def refuse(tmp_path: Path, repo: Path, bundle: Path, extra_config: str = "") -> str:
    """Apply with --yes must refuse with one line and leave the repo exactly as it was."""
    before = snapshot(repo)
    ctx = Context(load_settings(write_config(tmp_path, repo, extra_config)), Options(yes=True))
    with pytest.raises(BundleRefused) as info:
        apply_patch(ctx, load_runbook(RUNBOOK), bundle)
    assert snapshot(repo) == before
    assert not (repo / ".afasa-ops").exists()  # refused before any lock or journal
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == ExitCode.USAGE
    assert "nothing was written" in message
    return message


def test_dotdot_entry_is_zip_slip(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    bundle = hostile_zip(tmp_path / "b.zip", tree, [("Afasa-main/../../evil.sh", b"rm -rf /\n")])
    assert "zip slip" in refuse(tmp_path, afasa_repo, bundle)
    assert not (tmp_path / "evil.sh").exists()


def test_absolute_entry_is_zip_slip(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    bundle = hostile_zip(tmp_path / "b.zip", tree, [("/tmp/afasa-evil", b"x")])
    assert "absolute path" in refuse(tmp_path, afasa_repo, bundle)


def test_windows_drive_entry_is_refused(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    bundle = hostile_zip(tmp_path / "b.zip", tree, [("C:\\evil.bat", b"x")])
    assert "absolute path" in refuse(tmp_path, afasa_repo, bundle)


def test_symlink_entry_is_refused(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    link = special_entry("Afasa-main/services/common/link.py", stat.S_IFLNK)
    bundle = hostile_zip(tmp_path / "b.zip", tree, [(link, b"/etc/passwd")])
    message = refuse(tmp_path, afasa_repo, bundle)
    assert "'Afasa-main/services/common/link.py' is a symlink" in message


def test_device_entry_is_refused(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    dev = special_entry("Afasa-main/dev-null", stat.S_IFCHR)
    bundle = hostile_zip(tmp_path / "b.zip", tree, [(dev, b"")])
    assert "device or special file" in refuse(tmp_path, afasa_repo, bundle)


def test_entry_over_size_limit(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    (tree / "services/report/app/big.bin").write_bytes(os.urandom(200_000))
    bundle = zip_tree(tree, tmp_path / "b.zip")
    message = refuse(tmp_path, afasa_repo, bundle, "[patch]\nmax_entry_bytes = 100000\n")
    assert "big.bin' is 200000 bytes (limit 100000)" in message


def test_total_size_limit(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    for i in range(3):
        (tree / f"services/report/app/blob{i}.bin").write_bytes(os.urandom(40_000))
    bundle = zip_tree(tree, tmp_path / "b.zip")
    message = refuse(tmp_path, afasa_repo, bundle, "[patch]\nmax_total_bytes = 100000\n")
    assert "(limit 100000)" in message


def test_zip_bomb_ratio(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    # 4 MiB of zeros deflates to a few KiB: far past 100:1, though under the size limit.
    bundle = hostile_zip(tmp_path / "b.zip", tree, [("Afasa-main/zeros.sql", bytes(4 << 20))])
    message = refuse(tmp_path, afasa_repo, bundle)
    assert "zip bomb" in message and "zeros.sql" in message


def test_declared_size_that_lies_is_caught_while_reading(tmp_path: Path) -> None:
    # The headers claim 10 bytes; the deflate stream holds 300 KiB. Reading counts real bytes.
    bundle = lying_zip(tmp_path / "b.zip", "docker-compose.yml", b"a" * 300_000, 10)
    with pytest.raises(BundleRefused) as info:
        read_bundle(bundle, Limits())
    assert "docker-compose.yml" in str(info.value) and "corrupt" in str(info.value)


def test_size_under_the_limit_that_lies_is_refused(tmp_path: Path) -> None:
    # Declares a size under the limit, but the stream inflates past it.
    bundle = lying_zip(tmp_path / "b.zip", "docker-compose.yml", os.urandom(50_000), 1_000)
    with pytest.raises(BundleRefused) as info:
        read_bundle(bundle, Limits(max_entry_bytes=2_000))
    assert "docker-compose.yml" in str(info.value)


def test_truncated_zip(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    good = zip_tree(tree, tmp_path / "good.zip").read_bytes()
    bundle = tmp_path / "truncated.zip"
    bundle.write_bytes(good[: len(good) // 2])
    assert "corrupt or truncated" in refuse(tmp_path, afasa_repo, bundle)


def test_corrupt_member_data(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    good = bytearray(zip_tree(tree, tmp_path / "good.zip").read_bytes())
    with zipfile.ZipFile(tmp_path / "good.zip") as zf:
        info = zf.getinfo("Afasa-main/docker-compose.yml")
    # Flip bytes inside that member's compressed data (after its 30-byte local header).
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 10
    for i in range(start, start + 20):
        good[i] ^= 0xFF
    bundle = tmp_path / "corrupt.zip"
    bundle.write_bytes(bytes(good))
    assert "corrupt or truncated" in refuse(tmp_path, afasa_repo, bundle)


def test_not_a_zip_at_all(tmp_path: Path, afasa_repo: Path) -> None:
    bundle = tmp_path / "notes.zip"
    bundle.write_text("these are not the files you want\n")
    assert "not a readable zip" in refuse(tmp_path, afasa_repo, bundle)


def test_not_a_repository_copy(tmp_path: Path, afasa_repo: Path) -> None:
    bundle = zip_entries(
        tmp_path / "b.zip", [("photos/one.jpg", b"\xff\xd8"), ("photos/two.jpg", b"\xff\xd8")]
    )
    assert "not a copy of the repository" in refuse(tmp_path, afasa_repo, bundle)


def test_case_insensitive_collision_inside_bundle(
    tmp_path: Path, afasa_repo: Path, tree: Path
) -> None:
    bundle = hostile_zip(
        tmp_path / "b.zip", tree, [("Afasa-main/Docker-Compose.yml", b"services: {}\n")]
    )
    message = refuse(tmp_path, afasa_repo, bundle)
    assert "collide on a case-insensitive filesystem" in message


def test_case_collision_with_the_repo(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    (tree / "services/common/Models.py").write_text("class Device: ...\n")
    (tree / "services/common/models.py").unlink()
    bundle = zip_tree(tree, tmp_path / "b.zip")
    assert "case-insensitive" in refuse(tmp_path, afasa_repo, bundle)


def test_duplicate_entry(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    bundle = hostile_zip(tmp_path / "b.zip", tree, [("Afasa-main/docker-compose.yml", b"x\n")])
    assert "appears twice" in refuse(tmp_path, afasa_repo, bundle)


def test_directory_bundle_symlink(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    (tree / "services/common/passwd").symlink_to("/etc/passwd")
    assert "is a symlink" in refuse(tmp_path, afasa_repo, tree)


def test_directory_bundle_symlinked_folder(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    (tree / "services/etc").symlink_to("/etc", target_is_directory=True)
    assert "'services/etc' is a symlink" in refuse(tmp_path, afasa_repo, tree)


def test_directory_bundle_fifo(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    os.mkfifo(tree / "services/pipe")
    assert "device or special file" in refuse(tmp_path, afasa_repo, tree)


def test_directory_bundle_device(tmp_path: Path, afasa_repo: Path, tree: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")  # the FIFO test covers non-root
    os.mknod(tree / "services/null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert "device or special file" in refuse(tmp_path, afasa_repo, tree)


def test_single_top_folder_is_stripped(tmp_path: Path, tree: Path) -> None:
    bundle = read_bundle(zip_tree(tree, tmp_path / "b.zip"))
    assert bundle.stripped_root == "Afasa-main"
    assert "docker-compose.yml" in bundle.files
    assert "services/tb_adapter/app/sync.py" in bundle.files
    flat = read_bundle(zip_tree(tree, tmp_path / "flat.zip", prefix=""))
    assert flat.stripped_root is None
    assert set(flat.files) == set(bundle.files)
    assert {p: f.data for p, f in flat.files.items()} == {
        p: f.data for p, f in bundle.files.items()
    }


def test_git_and_macos_metadata_are_ignored(tmp_path: Path, tree: Path) -> None:
    bundle = hostile_zip(
        tmp_path / "b.zip",
        tree,
        [("Afasa-main/.git/config", b"[core]\n"), ("__MACOSX/Afasa-main/._x", b"\x00")],
    )
    # __MACOSX/ is a second top-level folder only until it is dropped; then Afasa-main strips.
    read = read_bundle(bundle)
    assert ".git/config" not in read.files
    assert not any(p.startswith("__MACOSX") for p in read.files)
    assert read.stripped_root == "Afasa-main"
