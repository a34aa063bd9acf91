"""The public verbs, one module per CLI command (as alembic's command.py is its API): the CLI
parses, calls one of these and renders the result object it returns; Python callers use the
same functions. Nothing here prints or exits."""
