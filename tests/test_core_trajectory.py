import math

import numpy as np
import pytest

from earlyphase.core import MSE, Trajectory, describe_loss


def test_roundtrip_and_derived(tmp_path):
    traj = Trajectory.from_arrays(
        c=2.5,
        eta=0.1,
        loss=[1.0, 2.0, 1e6],
        loss_convention=describe_loss(MSE),
        sharpness=[25.0, 30.0, np.nan],
        config={"depth": 3, "width": 16},
        seeds={"init": 0, "sgd": 1, "measure": 2},
    )
    assert traj.num_steps == 2 and traj.loss0 == 1.0 and traj.lambda0 == 25.0
    assert traj.diverged and traj.divergence_step == 2
    path = traj.save(tmp_path / "run")
    loaded = Trajectory.load(path)
    assert loaded.c == 2.5 and loaded.config == {"depth": 3, "width": 16}
    assert loaded.seeds["measure"] == 2 and "numpy" in loaded.versions
    assert math.isnan(loaded.barrier_loss)
    np.testing.assert_array_equal(loaded.sharpness, traj.sharpness)
    assert "1/(2 B k)" in loaded.loss_convention


def test_missing_columns_rejected():
    import pandas as pd

    with pytest.raises(ValueError, match="missing columns"):
        Trajectory(c=1.0, eta=1.0, steps=pd.DataFrame({"loss": [1.0]}), loss_convention="mse")


def test_divergence_is_looked_for_from_step_one():
    start_above_bound = Trajectory.from_arrays(
        c=1.0, eta=0.1, loss=[2e5, 10.0, 1.0], loss_convention=describe_loss(MSE)
    )
    assert not start_above_bound.diverged and start_above_bound.divergence_step is None
    blown_up = Trajectory.from_arrays(c=1.0, eta=0.1, loss=[2e5, np.nan, np.nan], loss_convention=describe_loss(MSE))
    assert blown_up.divergence_step == 1
