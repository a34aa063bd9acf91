"""The command server: an opt-in, per-user process that has already imported afasa-ops.

A fresh afasa-ops process spends about half a converged `run all` importing its libraries
(psycopg, httpx, pydantic and the models, typer). `afasa-ops daemon start` leaves one process
with all of that loaded; each later command is forked from it, so it starts with the imports
done and nothing else: it reads its config, runbook and checkout afresh, in the caller's
directory, environment and umask, on the caller's stdin, stdout and stderr, and its exit code
is the caller's. The pattern is Mercurial's chg. See docs/commands.md (`afasa-ops daemon`).

client.py is the `afasa-ops` program itself and imports almost nothing; server.py is the
resident process; control.py starts, stops and describes it.
"""
