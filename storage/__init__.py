"""SharpRay storage: the index (SQLAlchemy; SQLite embedded, PostgreSQL to scale out) and the file store."""
