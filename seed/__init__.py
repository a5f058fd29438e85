"""Seed scripts: load the curated events into SQLite (python -m seed)."""
