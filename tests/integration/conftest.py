"""Fixtures shared by the workers' test modules: one migrated database per module, and an
engine on it as the NOBYPASSRLS application role. (The Docker modules define their own
`engine`, the engine's socket; a module's own fixture wins.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.platform_db import PlatformDb, platform_database


@pytest.fixture(scope="module")
def pdb() -> Iterator[PlatformDb]:
    with platform_database() as db:
        yield db


@pytest.fixture
def engine(pdb: PlatformDb):  # type: ignore[no-untyped-def]
    from afasa_ops.infra.postgres import make_engine

    eng = make_engine(pdb.app_dsn)
    yield eng
    eng.dispose()
