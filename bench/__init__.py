"""The benchmark suite: ingest, command round trips, start and reconnect storms, footprint (``python -m bench``)."""
