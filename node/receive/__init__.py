"""Receivers: protocol edges that hand bytes to ``node.ingest`` and map its errors to statuses."""
