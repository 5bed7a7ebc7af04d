"""Sweeps: critical values over (c, depth, width, seed), resumable, on local processes or Dask.

    spec = load_spec("examples/fcn_fashion_cpu.toml")        # or spec_from_mapping({...})
    status = run_sweep(spec, "results/fcn", LocalExecutor(jobs=2))
    print(sweep_status("results/fcn").describe())

Modules: ``spec`` (the TOML specification), ``store`` (the results directory), ``worker``
(one search over c for one point; ``lookahead_search``: one started from the one-step
look-ahead, checked by full runs), ``executors`` (local processes, Dask), ``driver``
(run_sweep, sweep_status), ``tables`` (critical_values.csv and its seed means).
The search itself is ``earlyphase.core.search`` (shared with the theory side).
"""

from earlyphase.empirical.sweep.driver import SweepStatus, run_sweep, sweep_status
from earlyphase.empirical.sweep.executors import DaskExecutor, LocalExecutor
from earlyphase.empirical.sweep.spec import SearchSpec, SweepPoint, SweepSpec, load_spec, spec_from_mapping

__all__ = [
    "DaskExecutor",
    "LocalExecutor",
    "SearchSpec",
    "SweepPoint",
    "SweepSpec",
    "SweepStatus",
    "load_spec",
    "run_sweep",
    "spec_from_mapping",
    "sweep_status",
]
