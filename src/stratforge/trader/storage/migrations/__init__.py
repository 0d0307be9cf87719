"""Alembic migrations of the trader store, shipped inside the package and run on open."""
