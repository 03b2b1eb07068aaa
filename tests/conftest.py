"""The whole suite runs in float64 so that parity means agreement to round-off."""

import jax

jax.config.update("jax_enable_x64", True)


def pytest_terminal_summary(terminalreporter):
    """States how many optimizer x dtype x case combinations the property tests ran."""
    import sys

    module = sys.modules.get("test_properties")
    if module is None or not module.RUNS:
        return
    runs = module.RUNS
    optimizers = {name for name, _ in runs}
    dtypes = {dtype for _, dtype in runs}
    terminalreporter.write_line(
        f"property tests: {len(optimizers)} optimizers x {len(dtypes)} dtypes, "
        f"{sum(runs.values())} cases run"
    )
