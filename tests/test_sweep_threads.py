"""The default torch threads of a sweep: one per search, whatever the cores and jobs (no oversubscription).

Oracle: torch.get_num_threads() read inside the runner's prepare while a sweep runs.
"""

from pathlib import Path

import test_sweep_toy
import torch

from earlyphase.empirical.sweep import DaskExecutor, LocalExecutor, run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.executors import cpu_count

TOY = {
    "runner": "test_sweep_toy",
    "model": {"depths": [2], "widths": [16]},
    "protocol": {"steps": 4},
    "seeds": {"init": [0], "sgd": [0]},
    "search": {"x_min": 0.0, "x_max": 2.0},
}


def test_default_is_one_thread_per_search_and_an_explicit_count_wins():
    for jobs in (1, 2, 64):
        assert LocalExecutor(jobs=jobs).threads_per_task() == 1
        assert LocalExecutor(jobs=jobs, threads=3).threads_per_task() == 3
    assert DaskExecutor(workers=2).threads_per_task() == 1
    assert DaskExecutor(scheduler="tcp://nowhere:8786").threads_per_task() is None  # the cluster's own setting


def test_a_sweep_in_this_process_runs_its_searches_on_one_thread(tmp_path, monkeypatch):
    seen = []
    prepare = test_sweep_toy.prepare
    monkeypatch.setattr(
        test_sweep_toy, "prepare", lambda config: (seen.append(torch.get_num_threads()), prepare(config))[1]
    )
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, min(cpu_count(), 4)))
    try:
        run_sweep(spec_from_mapping(TOY), Path(tmp_path), LocalExecutor(jobs=1), progress=False)
        assert seen == [1]
        assert torch.get_num_threads() == max(2, min(cpu_count(), 4))  # restored after the search
    finally:
        torch.set_num_threads(before)
