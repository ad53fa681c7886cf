"""Dispatch: send result objects to destinations; transient failures are retried with backoff."""
