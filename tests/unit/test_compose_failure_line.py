"""The one line that says why a Compose command failed, as v1 and v2 print their failures."""

from __future__ import annotations

from afasa_ops.findings import CommandRecord
from afasa_ops.infra.compose import failure_line

V2_BUILD_STDOUT = """\
#5 [built internal] load build context
#5 DONE 0.0s

#6 [built 2/2] COPY wheelhouse /wheels
#6 ERROR: "/wheelhouse" not found: not found
------
 > [built 2/2] COPY wheelhouse /wheels:
------
"""
V2_BUILD_STDERR = (
    'failed to solve: failed to compute cache key: "/wheelhouse" not found: not found\n'
)

V1_BUILD_STDERR = """\
Building built
Step 2/2 : COPY wheelhouse /wheels
COPY failed: file not found in build context or excluded by .dockerignore: stat wheelhouse: file does not exist
Service 'built' failed to build : Build failed
"""


def record(stdout: str = "", stderr: str = "") -> CommandRecord:
    return CommandRecord(["docker", "compose", "up"], 17, 1.0, stdout, stderr)


def test_v2_buildkit_failure_names_the_step_and_service() -> None:
    assert failure_line(record(V2_BUILD_STDOUT, V2_BUILD_STDERR)) == (
        'failed to solve: failed to compute cache key: "/wheelhouse" not found: not found '
        "(at [built 2/2] COPY wheelhouse /wheels)"
    )


def test_v2_failure_without_a_quoted_step_is_its_last_line() -> None:
    assert failure_line(record("", "failed to solve: rpc error\n")) == "failed to solve: rpc error"


def test_v1_build_failure_names_its_cause() -> None:
    line = failure_line(record("", V1_BUILD_STDERR))
    assert line.startswith("Service 'built' failed to build : Build failed: COPY failed:")


def test_other_failures_are_the_last_line() -> None:
    said = "no such service: ghost\n"
    assert failure_line(record("", said)) == "no such service: ghost"
