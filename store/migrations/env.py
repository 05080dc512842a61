"""Alembic environment: the engine is handed over by `store.db.upgrade_db`."""

from alembic import context
from sqlmodel import SQLModel
from tafang.store import models  # noqa: F401  (registers the tables)

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from tafang.store.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"), upgrade=False)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
