"""Alembic migrations of the store's schema (run by :mod:`store.migrate`)."""
