"""Report service (stub as found: generation blocks the API)."""
