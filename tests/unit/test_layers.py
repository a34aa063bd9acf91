"""Imports point down the layers, never up. The order (top first), as docs/architecture.md
draws it:

    cli          cli/, __main__, daemon/   parse, call one command, render; the command server
    render       render/                   result objects to text, JSON, Markdown, JUnit
    commands     commands/                 the public verbs (the Python API)
    steps        steps/                    step kinds, one module per kind prefix
    services     api/, workers/            the HTTP service and the workers (beside steps)
    engine       runbook/                  Step contract, loader, runner, journal, Context
    domain       traefik/ schema/ patch/ compose/ platform/
    infra        infra/                    one driver per external system
    base         errors findings files redact tokens config config_load resources extras,
                 afasa_ops/__init__

A module may import its own package and any layer below its own. Packages of one layer may
import each other only in cli (__main__ runs cli/), domain and base. The services (api/, workers/) stand beside the
engine rather than on it: they never import runbook/ or steps/, and steps/ never imports
them. Every import counts: top-level, inside functions, and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "afasa_ops"

LAYERS: list[tuple[str, set[str]]] = [
    ("cli", {"cli", "__main__", "daemon"}),
    ("render", {"render"}),
    ("commands", {"commands"}),
    ("steps", {"steps"}),
    ("services", {"api", "workers"}),
    ("engine", {"runbook"}),
    ("domain", {"traefik", "schema", "patch", "compose", "platform"}),
    ("infra", {"infra"}),
    (
        "base",
        {
            "errors",
            "findings",
            "files",
            "redact",
            "tokens",
            "config",
            "config_load",
            "resources",
            "extras",
            "__init__",
        },
    ),
]
SIDEWAYS_ALLOWED = {"cli", "domain", "base"}
APART = ({"api", "workers"}, {"runbook", "steps"})

RANK = {pkg: len(LAYERS) - i for i, (_, pkgs) in enumerate(LAYERS) for pkg in pkgs}
LAYER = {pkg: name for name, pkgs in LAYERS for pkg in pkgs}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> list[tuple[str, str, int]]:
    """(importing file, imported afasa_ops module, line) for every import in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found += [(rel, n, node.lineno) for n in names if n.split(".")[0] == "afasa_ops"]
    return found


def owner(rel: str) -> str:
    parts = Path(rel).with_suffix("").parts  # afasa_ops/<pkg or module>/...
    return parts[1] if len(parts) > 1 else "__init__"


def wrong_way(src: str, dst: str) -> str | None:
    if src == dst:
        return None
    if src not in RANK or dst not in RANK:
        return f"{src if src not in RANK else dst} is in no layer: add it to LAYERS"
    if RANK[dst] > RANK[src]:
        return f"points up: {LAYER[src]} -> {LAYER[dst]}"
    if RANK[dst] == RANK[src] and LAYER[src] not in SIDEWAYS_ALLOWED:
        return f"points sideways within {LAYER[src]}"
    if (src in APART[0] and dst in APART[1]) or (src in APART[1] and dst in APART[0]):
        return "the services and the engine stand apart"
    return None


def test_every_package_is_in_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert packages | modules <= set(RANK), sorted((packages | modules) - set(RANK))


def test_no_import_points_up() -> None:
    problems = []
    for rel, module, line in imports():
        why = wrong_way(owner(rel), top(module))
        if why:
            problems.append(f"{rel}:{line} imports {module}: {why}")
    assert not problems, "\n".join(problems)


def test_the_rule_catches_the_arrows_it_was_written_for() -> None:
    # The upward arrows the restructuring removed stay wrong.
    assert wrong_way("infra", "runbook")  # infra/shell.py importing runbook.model
    assert wrong_way("steps", "api")  # steps/checks.py importing api/
    assert wrong_way("schema", "runbook")  # schema/ importing runbook.model for Finding
    assert wrong_way("platform", "steps")
    assert wrong_way("workers", "runbook")
    assert wrong_way("commands", "cli")
    assert wrong_way("steps", "runbook") is None and wrong_way("traefik", "compose") is None
