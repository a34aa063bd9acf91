"""Step kinds by domain. Each module registers its kinds with runbook.step.register."""
