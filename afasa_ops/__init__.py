"""afasa-ops: the AFASA 2.0 repair runbook as software."""

__version__ = "0.1.0"
