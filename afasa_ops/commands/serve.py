"""`afasa-ops serve`: the reference HTTP service, run until stopped. api/serve.py builds the
runtime (refusing a bad [api] or [database] configuration) and runs uvicorn; this module is
its place among the commands."""

from __future__ import annotations

from afasa_ops.api.serve import serve

__all__ = ["serve"]
