"""Cold start of `afasa-ops --help` against `python -c "import typer"`.

Median wall time over N alternating runs of each, measured side by side in one run; prints
both and the ratio. Target: ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 1.5


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("afasa-ops")
    cli = (
        [str(script), "--help"]
        if script.exists()
        else [sys.executable, "-m", "afasa_ops", "--help"]
    )
    baseline = [sys.executable, "-c", "import typer"]
    wall(cli), wall(baseline)  # warm the page cache; "cold" means a new process each time
    ours, theirs = [], []
    for _ in range(max(10, args.runs)):
        ours.append(wall(cli))
        theirs.append(wall(baseline))
    a, b = statistics.median(ours), statistics.median(theirs)
    ratio = a / b
    print(f"afasa-ops --help   median {a * 1000:7.1f} ms over {len(ours)} runs")
    print(f"import typer       median {b * 1000:7.1f} ms over {len(theirs)} runs")
    print(
        f"ratio {ratio:.2f} (target <= {TARGET_RATIO})  {'OK' if ratio <= TARGET_RATIO else 'OVER'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
