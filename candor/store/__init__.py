"""The store: SQLAlchemy 2 models, sessions, and Alembic migrations.

SQLite in CANDOR_HOME by default; PostgreSQL (or any SQLAlchemy URL) when CANDOR_DATABASE_URL
names one. Migrations run on server start and with `candor db upgrade`.
"""

from candor.store.db import Store, database_url, open_store

__all__ = ["Store", "database_url", "open_store"]
