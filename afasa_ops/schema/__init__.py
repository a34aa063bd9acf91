"""Schema migrations for an existing AFASA database: ledger, baseline, RLS audit, app role."""
