"""The runbook engine: the step contract, the loader, the runner, the journal and incidents."""
