"""Alembic migrations of the store (engine.store.db.upgrade_database runs them)."""
