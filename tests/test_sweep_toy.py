"""A deterministic stand-in runner for sweep tests, and checks that it does what it says.

``prepare``/``run_at_c`` follow the engine's contract (earlyphase.empirical.training) but build
trajectories by hand: with x = log2 c, the loss catapults for x >= x_loss, the sharpness for
x >= x_sharp, the straight path has a barrier for x >= x_barrier, and the run diverges for
x >= x_div, with the thresholds known in closed form (``toy_thresholds``). Sweep tests use it as
``runner = "test_sweep_toy"`` (tests/ is on sys.path under pytest; subprocesses get PYTHONPATH).

Environment: TOY_SLEEP (seconds per run) slows runs down for the kill-and-resume test;
TOY_PREPARE_LOG (a file) gets one line per ``prepare`` call. Width 13 raises (a failing run).
TOY_KILL_MARKER (a file) and TOY_KILL_WIDTH: the first run at that width SIGKILLs its own
process (a worker killed mid-run) and creates the marker, so the retry runs normally.
"""

import math
import os
import signal
import time
from dataclasses import asdict, dataclass

import numpy as np
import pytest

from earlyphase.core import Trajectory
from earlyphase.core.search import flags_of
from earlyphase.empirical.config import TrainConfig

FAILING_WIDTH = 13


def toy_thresholds(config: TrainConfig) -> dict[str, float]:
    """x = log2 c of each switch (offsets chosen to keep them off the 0.1-grid in the tests)."""
    jitter = 0.1 * ((3 * config.seeds.init + config.seeds.sgd) % 4)
    ratio = config.model.depth / config.model.width
    x_loss = 1.03 + 9.7 * ratio + jitter
    x_sharp = x_loss + 0.42 + 20.0 * ratio
    x_barrier = x_loss + 0.63
    x_div = x_loss + 1.5 + jitter
    return {"loss": x_loss, "sharp": x_sharp, "barrier": x_barrier, "div": x_div}


@dataclass(frozen=True)
class ToyExperiment:
    config: TrainConfig
    lambda0: float
    loss0: float


def prepare(config: TrainConfig) -> ToyExperiment:
    if config.model.width == FAILING_WIDTH:
        raise RuntimeError(f"toy failure at width {FAILING_WIDTH}")
    log = os.environ.get("TOY_PREPARE_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{config.model.depth} {config.model.width} {config.seeds.init} {config.seeds.sgd}\n")
    return ToyExperiment(config, lambda0=10.0 * config.model.depth, loss0=1.0 + 0.1 * config.seeds.init)


def run_at_c(experiment: ToyExperiment, c: float) -> Trajectory:
    time.sleep(float(os.environ.get("TOY_SLEEP", "0")))
    kill_marker = os.environ.get("TOY_KILL_MARKER")
    if (
        kill_marker
        and experiment.config.model.width == int(os.environ["TOY_KILL_WIDTH"])
        and not os.path.exists(kill_marker)
    ):
        open(kill_marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # once: the worker process dies mid-search
    config, x = experiment.config, math.log2(c)
    at = toy_thresholds(config)
    steps = config.protocol.steps
    t = np.arange(steps + 1)
    loss = experiment.loss0 * 0.9**t
    sharp = experiment.lambda0 * 0.95**t
    if x >= at["loss"]:
        loss[1] = 1.5 * experiment.loss0
    if x >= at["sharp"]:
        sharp[1] = 1.2 * experiment.lambda0
    barrier = (1.5 if x >= at["barrier"] else 0.9) * experiment.loss0 if config.measurement.barrier else math.nan
    if x >= at["div"]:
        loss[1:] = np.nan
        loss[1] = 10 * config.protocol.loss_max
        sharp[2:] = np.nan
        barrier = math.nan
    return Trajectory.from_arrays(
        c,
        c / experiment.lambda0,
        loss,
        config.protocol.loss,
        loss_max=config.protocol.loss_max,
        sharpness=sharp,
        barrier_loss=barrier,
        config=asdict(config),
        seeds={"init": config.seeds.init, "sgd": config.seeds.sgd, "measure": config.seeds.measure},
    )


def expected_grid_thresholds(config: TrainConfig, x_min: float, x_step: float, size: int) -> dict[str, float | None]:
    """The critical values the reference grid must give, from the closed-form switches."""
    at = toy_thresholds(config)
    xs = [round(x_min + k * x_step, 10) for k in range(size)]

    def first(x):  # compared as run_at_c does, through log2 of the grid's c
        return next((k for k, xk in enumerate(xs) if math.log2(2.0**xk) >= x), None)

    k_div = first(at["div"])
    top = size - 1 if k_div is None else k_div
    k_loss = first(min(at["loss"], at["div"]))
    k_sharp = first(at["sharp"])
    k_barrier = first(at["barrier"])
    c = [2.0**xk for xk in xs]
    c_max = None if k_div in (None, 0) else c[k_div - 1]
    barrier_ok = config.measurement.barrier and k_barrier is not None and k_div is not None and k_barrier < k_div
    return {
        "c_loss": c[k_loss] if k_loss is not None and k_loss <= top else None,
        "c_sharp": c[k_sharp] if k_sharp is not None and k_sharp <= top else None,
        "c_max": c_max,
        "c_barrier": (c[k_barrier] if barrier_ok else c_max) if config.measurement.barrier else None,
    }


@pytest.mark.parametrize("x", [0.5, 1.1, 1.6, 1.75, 2.2, 3.1, 5.0])
def test_toy_flags_switch_at_the_declared_thresholds(x):
    config = TrainConfig.build(depth=2, width=64, steps=4, seed_init=1)
    at = toy_thresholds(config)
    flags = flags_of(run_at_c(prepare(config), 2.0**x))
    diverged = x >= at["div"]
    assert (flags.loss_catapult, flags.sharpness_catapult, flags.diverged, flags.barrier) == (
        x >= at["loss"] or diverged,
        x >= at["sharp"],
        diverged,
        False if diverged else x >= at["barrier"],
    )


def test_toy_records_round_trip(tmp_path):
    run = run_at_c(prepare(TrainConfig.build(depth=3, width=32, steps=3)), 3.0)
    run.save(tmp_path / "run")
    loaded = Trajectory.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.loss, run.loss)
    assert flags_of(loaded) == flags_of(run)
