"""Shared test configuration: a hypothesis profile sized for a 2-core CI machine."""

import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("FNOPT_HYPOTHESIS_PROFILE", "ci"))


# In CI (CI=true) a reference package that is missing must fail the run, not skip: every
# peer the tests compare against is installed by ./run test (the refs and docs extras).
_MISSING = re.compile(r"could not import|not installed|No module named")


def _fail_if_missing(report: Any) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true") and report.skipped:
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if _MISSING.search(reason):
            report.outcome = "failed"
            report.longrepr = f"a reference package is missing in CI (install the extras): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    _fail_if_missing(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    outcome = yield
    _fail_if_missing(outcome.get_result())
