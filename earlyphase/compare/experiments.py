"""Runs behind figures 2-4, with the empirical engine (``prepare`` once per network, ``run_at_c`` per c).

Each returns a trajectory table (``earlyphase.compare.trajectories``). Every c of one
(depth, width, seed) starts from the same initialisation, as the protocol requires.
``task_pool`` runs independent pieces of work in worker processes.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import pandas as pd
import torch
from tqdm.auto import tqdm

from earlyphase.compare.trajectories import trajectory_table
from earlyphase.empirical.training import TrainConfig, prepare, run_at_c


def runs_over_c(
    base: TrainConfig,
    pairs: Sequence[tuple[int, int]],
    c_values: Sequence[float],
    seeds: Sequence[int] = (0,),
    progress: bool = True,
) -> pd.DataFrame:
    """Trajectory table of every (depth, width) x seed (init = SGD seed) x c under ``base``."""
    records = []
    jobs = [(depth, width, seed) for depth, width in pairs for seed in seeds]
    with tqdm(total=len(jobs) * len(c_values), desc="runs", unit="run", disable=not progress) as bar:
        for depth, width, seed in jobs:
            experiment = prepare(base.replace(depth=depth, width=width, seed_init=seed, seed_sgd=seed))
            for c in c_values:
                records.append(run_at_c(experiment, float(c)))
                bar.update()
    return trajectory_table(records)


def runs_to_tau(
    base: TrainConfig,
    pairs: Sequence[tuple[int, int]],
    c_values: Sequence[float],
    k: float,
    progress: bool = True,
) -> pd.DataFrame:
    """Trajectory table of runs at each (depth, width) x c that stop at tau = ceil(K / c) steps.

    The sharpness is measured at t = 0 and at the last step tau only (the engine always
    measures the last step), so lambda_tau / lambda_0 costs two eigenvalue solves per run.
    """
    records = []
    with tqdm(total=len(pairs) * len(c_values), desc="runs to tau", unit="run", disable=not progress) as bar:
        for depth, width in pairs:
            experiment = prepare(base.replace(depth=depth, width=width))
            for c in c_values:
                tau = math.ceil(k / c)
                config = experiment.config.replace(steps=tau, measure_every=tau)
                records.append(run_at_c(replace(experiment, config=config), float(c)))
                bar.update()
    return trajectory_table(records)


def one_thread() -> None:
    """Worker-process initialiser: one torch thread, so that N workers use N cores."""
    torch.set_num_threads(1)


def task_pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned worker processes of one torch thread each."""
    return ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn"), initializer=one_thread)
