"""Terminal rendering of patch plans and apply results. No logic about the repo."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from afasa_ops.patch.apply import ApplyResult
    from afasa_ops.patch.plan import PatchPlan

_MARK = {"added": "A", "modified": "M", "unchanged": "=", "only-in-repo": "R"}


def render_plan(plan: PatchPlan, out: Console, *, diffs: bool = True) -> None:
    counts = plan.counts()
    out.print(
        f"bundle {plan.bundle.source} ({plan.bundle.kind}) -> {plan.repo}: "
        + ", ".join(f"{n} {s}" for s, n in counts.items()),
        markup=False,
    )
    out.print(f"conflicts checked against: {plan.tag or 'no tag'}", markup=False)
    for note in plan.notes:
        out.print(f"note: {note}", markup=False)
    for message, members in plan.groups():
        out.print(f"\n{message}", markup=False, style="bold")
        for c in members:
            extra = f"  CONFLICT: {c.conflict}" if c.conflict else ""
            kept = "  (kept unless --delete)" if c.status == "only-in-repo" else ""
            out.print(f"  {_MARK[c.status]} {c.path}{kept}{extra}", markup=False)
    if not plan.writes:
        out.print("\nnothing to apply: the repo already matches the bundle", markup=False)
    if diffs:
        for c in plan.changes:
            if c.diff and c.status != "unchanged":
                out.print("\n" + c.diff.rstrip(), markup=False, highlight=False)


def render_apply(result: ApplyResult, out: Console) -> None:
    if not result.groups and not result.conflicts_skipped:
        out.print("nothing to do: the repo already matches the bundle", markup=False)
    for g in result.groups:
        what = g.commit[:12] if g.commit else g.status
        out.print(f"{what}  {g.message}  ({len(g.paths)} file(s))", markup=False)
        for path in g.paths:
            out.print(f"    {path}", markup=False)
    if result.verified:
        out.print(
            f"verified {len(result.verified)} path(s) byte for byte on {result.branch}",
            markup=False,
        )
    if result.kept_only_in_repo:
        out.print(
            f"kept {len(result.kept_only_in_repo)} file(s) the bundle lacks "
            "(pass --delete to remove them): " + ", ".join(result.kept_only_in_repo),
            markup=False,
        )
    for c in result.conflicts_skipped:
        out.print(f"conflict, not overwritten: {c.path}: {c.conflict}", markup=False)
    if result.conflicts_skipped:
        out.print("resolve the conflicts, or pass --force to overwrite them", markup=False)
