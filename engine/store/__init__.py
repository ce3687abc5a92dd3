"""The store: Barème's database (SQLite embedded by default, PostgreSQL for teams).

Data sets are imported into it (``engine.store.importer``), runs are simulated from it and kept
as drafts, approved, then emitted with their invoice numbers (``engine.store.runs``,
``engine.store.simulation``, ``engine.store.emission``). The schema is described in
``engine.store.schema`` and created only by the Alembic migrations in
``engine/store/migrations`` (``upgrade_database``). See docs/store.md.
"""

from engine.store.db import (
    DEFAULT_URL,
    Store,
    StoreError,
    StoreUnavailable,
    open_store,
    upgrade_database,
)

__all__ = [
    "DEFAULT_URL",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "open_store",
    "upgrade_database",
]
