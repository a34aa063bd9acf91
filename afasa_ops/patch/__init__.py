"""The operators' patch bundle: read it safely, plan it against the repo, apply it as grouped
commits. bundle.py reads and refuses, plan.py compares, apply.py writes and commits."""
