"""Alembic environment: Candor passes its engine in the config, so no alembic.ini is needed."""

from alembic import context

from candor.store.models import Base

config = context.config
engine = config.attributes.get("engine")


def run() -> None:
    if engine is None:
        raise RuntimeError("Candor's migrations run through candor.store.Store, which passes its engine")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
