"""Throwaway PostgreSQL databases on 127.0.0.1:5432 (trust auth), one per benchmark run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def available() -> bool:
    try:
        import psycopg

        with psycopg.connect(ADMIN_DSN, connect_timeout=3):
            return True
    except Exception:
        return False


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database; yields its SQLAlchemy URL and drops it afterwards."""
    import psycopg

    name = f"sharpray_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
