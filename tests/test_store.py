"""The store: migrations produce exactly the schema the code uses, with durability pragmas on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from relay.store.database import create_engine, migrate
from relay.store.schema import metadata


async def test_migrations_match_the_schema_and_are_idempotent(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        await migrate(engine)
        await migrate(engine)  # every start runs it: the second run must change nothing
        async with engine.connect() as connection:
            def describe(sync_connection):  # type: ignore[no-untyped-def]
                inspector = inspect(sync_connection)
                return {
                    table: ({c["name"] for c in inspector.get_columns(table)},
                            {tuple(i["column_names"]) for i in inspector.get_indexes(table)})
                    for table in inspector.get_table_names() if table != "alembic_version"
                }

            migrated = await connection.run_sync(describe)
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
    finally:
        await engine.dispose()
    declared = {
        table.name: ({c.name for c in table.columns}, {tuple(c.name for c in i.columns) for i in table.indexes})
        for table in metadata.sorted_tables
    }
    assert migrated == declared
    assert journal == "wal" and synchronous == 2  # 2 = FULL: a 250 survives power loss
