"""The whole suite runs in float64 so that parity means agreement to round-off."""

import collections
import sys

import jax
import pytest

jax.config.update("jax_enable_x64", True)

# optax's own tests, run on gradxform by tests/optax_conformance/run.py, not by pytest.
collect_ignore = ["optax_conformance"]

# (optimizer, dtype) -> property-test cases run, gathered from every xdist worker.
_PROPERTY_RUNS: collections.Counter = collections.Counter()


def _local_runs():
    module = sys.modules.get("test_properties")
    return collections.Counter() if module is None else module.RUNS


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the counts to the controller
        workeroutput["property_runs"] = [[n, d, c] for (n, d), c in _local_runs().items()]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    for name, dtype, count in getattr(node, "workeroutput", {}).get("property_runs", []):
        _PROPERTY_RUNS[(name, dtype)] += count


def pytest_terminal_summary(terminalreporter):
    """States how many optimizer x dtype x case combinations the property tests ran."""
    runs = _PROPERTY_RUNS + _local_runs()
    if not runs:
        return
    optimizers = {name for name, _ in runs}
    dtypes = {dtype for _, dtype in runs}
    terminalreporter.write_line(
        f"property tests: {len(optimizers)} optimizers x {len(dtypes)} dtypes, "
        f"{sum(runs.values())} cases run"
    )
