"""A real run's junit.xml read the way CI viewers read it (junitparser, as Jenkins- and
GitLab-style consumers do): one testsuite per phase, one testcase per verification step,
counts and times that agree with the cases, a failure with its message and evidence, a
skipped step with its reason, a passed step's evidence in system-out."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite

from tests.support.target import make_target

RUNBOOK = """
name: test
phases:
  - id: alpha
    steps:
      - {id: one, kind: test.marker, params: {path: one.txt}}
      - {id: probe, kind: test.probe, title: Probe the thing}
  - id: beta
    steps:
      - id: sync
        kind: check.functional
        params: {actions: [{name: sync, request: {method: POST, path: /sync}}]}
      - id: boom
        kind: test.failing
        params: {message: "the widget broke", argv: ["echo", "evidence line"]}
"""


def test_a_runs_junit_reads_in_a_viewer_as_the_run_went(tmp_path: Path) -> None:
    t = make_target(tmp_path, '[checks]\nmode = "read-only"\n')
    t.write_runbook(RUNBOOK)
    assert t.cli("run", "--yes").returncode == 1
    (path,) = (t.repo / ".afasa-ops" / "runs").glob("*/junit.xml")

    _declared_counts_agree(path)
    xml = JUnitXml.fromfile(str(path))
    suites = {s.name: s for s in xml}
    assert list(suites) == ["alpha", "beta"]  # one suite per phase, in run order
    cases = {c.name: c for s in xml for c in s}
    assert list(cases) == ["alpha.one", "alpha.probe", "beta.sync", "beta.boom"]
    for suite in xml:
        _counts_agree(suite)
        for case in suite:
            assert case.classname == f"afasa-ops.{suite.name}"
            assert case.time is not None and case.time >= 0
    # The root's totals are what a viewer shows on the summary line.
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (4, 1, 0, 1)
    assert xml.time is not None and abs(xml.time - sum(s.time for s in xml)) < 0.002

    one = cases["alpha.one"]
    assert one.is_passed and not one.result
    assert one.system_out is not None and "wrote one.txt" in one.system_out
    # What the step fixed reads as fixed, not as a warning left open.
    assert "[fixed] test.marker_missing" in one.system_out
    # The step's title leads its evidence: a viewer shows only the id otherwise.
    probe = cases["alpha.probe"]
    assert probe.is_passed and probe.system_out == "Probe the thing\nprobed"

    (skip,) = cases["beta.sync"].result
    assert isinstance(skip, Skipped) and cases["beta.sync"].is_skipped
    assert skip.message is not None and "read-only" in skip.message and "POST /sync" in skip.message
    assert skip.text == skip.message

    (failure,) = cases["beta.boom"].result
    assert isinstance(failure, Failure) and not isinstance(failure, Error)
    assert failure.message == "apply failed: the widget broke"
    assert failure.type == "test.failing"
    assert failure.text is not None
    assert "$ echo evidence line -> 0" in failure.text and "evidence line" in failure.text


def _declared_counts_agree(path: Path) -> None:
    """Counts and times are written on the root and every suite (junitparser would work them
    out when missing; viewers that read the attributes would show nothing), and they are the
    cases' own."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    for element in [root, *root.iter("testsuite")]:
        cases = list(element.iter("testcase"))
        declared = {k: element.get(k) for k in ("tests", "failures", "errors", "skipped")}
        assert declared == {
            "tests": str(len(cases)),
            "failures": str(sum(1 for c in cases if c.find("failure") is not None)),
            "errors": str(sum(1 for c in cases if c.find("error") is not None)),
            "skipped": str(sum(1 for c in cases if c.find("skipped") is not None)),
        }, element.attrib
        time = element.get("time")
        assert time is not None
        assert abs(float(time) - sum(float(c.get("time", "nan")) for c in cases)) < 0.002


def _counts_agree(suite: TestSuite) -> None:
    """The counts and time a suite declares are those of its cases."""
    results = [type(r) for c in suite for r in c.result]
    assert suite.tests == len(list(suite))
    assert suite.failures == results.count(Failure)
    assert suite.errors == results.count(Error)
    assert suite.skipped == results.count(Skipped)
    assert suite.time is not None
    assert abs(suite.time - sum(c.time for c in suite)) < 0.002
    assert suite.timestamp
