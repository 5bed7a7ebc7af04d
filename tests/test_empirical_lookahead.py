"""The look-ahead predictor against its exact oracle: a sweep of run_at_c runs of one step (or K
steps for c_max) over the same grid, read by the same core thresholds; and the ray's first-order
slopes against the directional derivatives measured at theta_0."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from earlyphase.core.conventions import is_diverged
from earlyphase.core.search import BracketPlan, CGrid, GridPlan, flags_of, run_search
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.initial import measure_initial
from earlyphase.empirical.lookahead import bisect_first_true, lookahead_prediction, ray_losses, ray_sharpness
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

DIGITS = dict(dataset="digits", n_train=512, measure_size=256, batch_size=128, dtype="float64", barrier=False)
GRID = CGrid(x_min=3.0, x_max=6.0)  # c = 8 .. 64, step 2**0.1


def experiment_of(depth, width, seed, **options):
    return prepare(TrainConfig.build(**DIGITS, depth=depth, width=width, seed_init=seed, **options))


def sweep(experiment, steps):
    """Critical values of the grid protocol with runs of ``steps`` steps, the sharpness measured at
    every step."""
    config = experiment.config.replace(steps=steps)
    runs = dataclasses.replace(experiment, config=config)
    return run_search(GridPlan(GRID), lambda k: flags_of(run_at_c(runs, GRID.c(k)), config.protocol.epsilon)).critical


@pytest.mark.parametrize(
    ("depth", "width", "seed", "options"),
    [(2, 16, 0, {}), (3, 32, 2, {"loss_max": 1.0})],
    ids=["d2w16", "d3w32-low-loss-max"],
)
def test_one_step_lookahead_is_the_sweep_of_one_step_runs(depth, width, seed, options):
    experiment = experiment_of(depth, width, seed, **options)
    predicted, cost, details = lookahead_prediction(experiment, measure_initial(experiment), GridPlan(GRID), steps=1)
    expected = sweep(experiment, 1)
    assert predicted.c_loss == expected.c_loss and predicted.c_sharp == expected.c_sharp
    assert predicted.c_max == expected.c_max
    assert predicted.c_loss.found and predicted.c_sharp.found
    assert not predicted.c_barrier.found
    assert len(details.sharpness_order) <= np.log2(GRID.size) + 3
    assert cost.hvps == np.nansum(details.sharpness_hvps) > 0
    if options:  # the one-step run diverges inside the grid: c_max found, c_sharp read below it
        assert predicted.c_max.found and predicted.c_sharp.estimate <= predicted.c_max.high


def test_k_step_c_max_and_c_loss_are_those_of_the_k_step_sweep():
    experiment = experiment_of(4, 32, 1)
    measured = measure_initial(experiment)
    predicted, cost, details = lookahead_prediction(experiment, measured, GridPlan(GRID), steps=3)
    expected = sweep(experiment, 3)
    assert predicted.c_max.found and predicted.c_max == expected.c_max
    assert details.c_loss_steps == expected.c_loss
    first_divergent = GRID.index_at_or_above(np.log2(predicted.c_max.high))
    assert details.runs_order == tuple(range(first_divergent + 1))
    assert details.diverged[first_divergent] == 1.0 and (details.diverged[:first_divergent] == 0.0).all()
    assert np.isnan(details.diverged[first_divergent + 1 :]).all()  # not run above the first divergence
    steps_to_divergence = (
        int(np.argmax(is_diverged(details.step_losses[first_divergent, 1:], experiment.config.protocol.loss_max))) + 1
    )
    assert cost.gradients == 3 * first_divergent + steps_to_divergence
    # a bracketing search of the same runs finds the same thresholds with fewer of them
    bracketed, bracket_cost, bracket_details = lookahead_prediction(experiment, measured, BracketPlan(GRID), steps=3)
    assert bracketed == predicted and bracket_details.c_loss_steps == details.c_loss_steps
    assert len(bracket_details.runs_order) < len(details.runs_order) and bracket_cost.gradients < cost.gradients


def test_ray_is_first_order_along_the_first_gradient_at_small_c():
    """d/dc L(theta_0 - (c / lambda_H0) g_0) at c = 0 is -grad L . g_0 / lambda_H0; the sharpness
    changes at kappa_B / lambda_H0 per unit c (kappa_B = -grad lambda . g_0)."""
    experiment = experiment_of(3, 16, 0, lanczos_tol=1e-12, lanczos_max_iter=300)
    measured = measure_initial(experiment)
    g0, lambda0, c = measured.first_gradient, measured.lambda0, 1e-4
    ray = ray_losses(experiment, g0, [c])
    slope = -float(measured.gradient @ g0) / (lambda0 * measured.loss0)  # eval set = measurement batch
    assert (ray.loss_ratio[0] - 1) / c == pytest.approx(slope, rel=1e-3)
    batch_slope = -float(g0 @ g0) / (lambda0 * measured.first_batch_loss)
    assert (ray.batch_loss_ratio[0] - 1) / c == pytest.approx(batch_slope, rel=1e-3)
    sharpness = ray_sharpness(experiment, g0, c)
    assert sharpness.residual <= 1e-12 and sharpness.converged
    assert (sharpness.ratio - 1) / c == pytest.approx(measured.kappa_batch / lambda0**2, rel=1e-3)


@given(st.integers(0, 40), st.integers(-1, 45))
def test_bisection_finds_the_first_true_index_of_a_monotone_flag(top, switch):
    calls = []

    def flag(k):
        calls.append(k)
        return k >= switch

    evaluated = bisect_first_true(flag, top)
    assert len(calls) == len(set(calls)) == len(evaluated) <= np.log2(top + 1) + 3
    true = [k for k, value in evaluated.items() if value]
    if 0 <= switch <= top or switch < 0:
        assert min(true) == max(switch, 0)
        assert max(switch, 0) == 0 or max(switch, 0) - 1 in evaluated  # bracketed by adjacent indices
    else:
        assert not true and top in evaluated


def test_bad_arguments_name_the_parameter():
    experiment = experiment_of(2, 16, 0)
    measured = measure_initial(experiment)
    with pytest.raises(ValueError, match="steps"):
        lookahead_prediction(experiment, measured, GridPlan(GRID), steps=0)
    with pytest.raises(ValueError, match="epsilon"):
        lookahead_prediction(experiment, measured, GridPlan(GRID), epsilon=-0.1)
    with pytest.raises(ValueError, match="c must be"):
        ray_losses(experiment, measured.first_gradient, [1.0, -2.0])


@pytest.mark.parametrize(("arch", "depth", "width"), [("cnn", 4, 8), ("resnet18", 18, 2)], ids=["cnn", "resnet18"])
def test_lookahead_is_the_one_step_sweep_on_convolutional_nets(arch, depth, width):
    # the same oracle as for FCNs, on a Myrtle CNN and a normalisation-free ResNet-18 (8x8 digits
    # images; a coarse grid keeps the oracle's sweep short)
    small = {**DIGITS, "n_train": 128, "measure_size": 64, "batch_size": 64}
    experiment = prepare(TrainConfig.build(**small, arch=arch, depth=depth, width=width))
    grid = CGrid(x_min=0.0, x_max=10.0, x_step=0.5)
    predicted, _, _ = lookahead_prediction(experiment, measure_initial(experiment), GridPlan(grid), steps=1)
    one_step = dataclasses.replace(experiment, config=experiment.config.replace(steps=1))
    expected = run_search(GridPlan(grid), lambda k: flags_of(run_at_c(one_step, grid.c(k)), 0.0)).critical
    assert predicted.c_loss == expected.c_loss and predicted.c_sharp == expected.c_sharp
    assert predicted.c_max == expected.c_max
    assert predicted.c_loss.found and predicted.c_sharp.found and predicted.c_max.found
