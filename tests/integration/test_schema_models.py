"""The SQLAlchemy models against the migrated database, and used as the app role under RLS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from afasa_ops.infra.postgres import make_engine, sqlalchemy_url
from afasa_ops.platform import models
from afasa_ops.schema import migrator
from afasa_ops.schema.settings import SchemaSettings
from tests.support.schema_db import admin, app_role, query, settings_for

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
# Exists only where pgvector is installed; deliberately not mapped.
UNMAPPED = {("detections", "embedding")}


@pytest.fixture
def migrated(pg_database: str) -> Iterator[SchemaSettings]:
    with app_role(pg_database) as role:
        cfg = settings_for(pg_database, role)
        migrator.migrate(admin(cfg), cfg)
        yield cfg


@pytest.fixture
def db_engine(migrated: SchemaSettings) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(migrated.admin_dsn))
    yield engine
    engine.dispose()


def test_every_model_matches_its_table(db_engine: Engine) -> None:
    insp = inspect(db_engine)
    db_tables = set(insp.get_table_names()) - {"afasa_ops_schema_migrations"}
    assert db_tables == set(models.Base.metadata.tables)
    for table in models.Base.metadata.sorted_tables:
        reflected = {c["name"]: c for c in insp.get_columns(table.name)}
        expected = {c.name for c in table.columns}
        assert set(reflected) - {c for t, c in UNMAPPED if t == table.name} == expected, table
        for col in table.columns:
            db_col = reflected[col.name]
            where = f"{table.name}.{col.name}"
            assert col.type.compile(DIALECT) == db_col["type"].compile(DIALECT), where
            assert col.nullable == db_col["nullable"], where
            assert (col.server_default is not None) == (db_col["default"] is not None), where
        pk = insp.get_pk_constraint(table.name)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], table.name
        db_fks = {
            (tuple(fk["constrained_columns"]), fk["referred_table"])
            for fk in insp.get_foreign_keys(table.name)
        }
        model_fks = {
            (tuple(c.name for c in fkc.columns), fkc.referred_table.name)
            for fkc in table.foreign_key_constraints
        }
        assert db_fks == model_fks, table.name
        db_checks = {c["name"] for c in insp.get_check_constraints(table.name)}
        model_checks = {
            c.name for c in table.constraints if c.__class__.__name__ == "CheckConstraint"
        }
        assert model_checks <= db_checks, table.name
        db_uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name)}
        model_uniques = {
            tuple(c.name for c in u.columns)
            for u in table.constraints
            if u.__class__.__name__ == "UniqueConstraint"
        } | {(c.name,) for c in table.columns if c.unique}
        assert model_uniques == db_uniques, table.name


def test_tenant_tables_are_the_rls_tables(migrated: SchemaSettings) -> None:
    forced = {
        r[0]
        for r in query(
            migrated.admin_dsn,
            "SELECT relname FROM pg_class WHERE relforcerowsecurity AND relkind = 'r'",
        )
    }
    assert forced == set(models.TENANT_TABLES)


def test_models_work_as_the_app_role_under_rls(migrated: SchemaSettings) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    with Session(create_engine(sqlalchemy_url(migrated.admin_dsn))) as s, s.begin():
        s.add_all([models.Tenant(id=a, name="farm A"), models.Tenant(id=b, name="farm B")])
    app_dsn = migrated.admin_dsn.replace("postgres@", f"{migrated.app_role}@")
    engine = make_engine(app_dsn, pool_size=1)
    try:
        with Session(engine) as s, s.begin():
            s.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(a)})
            device = models.Device(tenant_id=a, provider="ubibot", external_id="c-1", name="c1")
            s.add(device)
            s.flush()
            s.add(models.DeviceCommand(tenant_id=a, device_id=device.id, command="disable"))
            s.add(
                models.EventOutbox(
                    tenant_id=a, event_id=uuid.uuid4(), subject="afasa.device.synced", payload={}
                )
            )
        with Session(engine) as s, s.begin():
            s.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(b)})
            assert s.scalars(select(models.Device)).all() == []
            # A tenant sees its own row of tenants only (schema/0008_tenant_privacy.sql).
            assert [t.id for t in s.scalars(select(models.Tenant)).all()] == [b]
        with Session(engine) as s, s.begin():
            s.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(a)})
            got = s.scalars(select(models.Device)).one()
            assert (got.metadata_, got.desired_enabled) == ({}, True)
            cmd = s.scalars(select(models.DeviceCommand)).one()
            assert (cmd.status, cmd.result) == ("requested", None)
    finally:
        engine.dispose()
