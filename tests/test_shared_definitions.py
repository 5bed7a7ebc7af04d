"""Settings shared by theory and experiment are defined once, in earlyphase.core, and used by both."""

import inspect

from earlyphase.core.conventions import LANCZOS_TOL, PARAMETERIZATIONS
from earlyphase.core.grid import DEFAULT_X_MAX, c_grid
from earlyphase.core.search import CGrid
from earlyphase.empirical import models
from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.curvature.lanczos import DEFAULT_TOL
from earlyphase.empirical.sweep.spec import SearchSpec
from earlyphase.theory import linear
from earlyphase.theory.lanczos import LanczosSettings
from earlyphase.theory.predict import PredictConfig


def test_one_grid_top_for_theory_and_experiment():
    assert inspect.signature(c_grid).parameters["x_max"].default == DEFAULT_X_MAX
    assert CGrid().x_max == SearchSpec().x_max == PredictConfig().x_max == DEFAULT_X_MAX
    assert c_grid()[-1] == 2.0**DEFAULT_X_MAX


def test_one_lanczos_tolerance():
    assert LanczosSettings().tol == DEFAULT_TOL == TrainConfig().measurement.lanczos_tol == LANCZOS_TOL


def test_one_list_of_parameterisations():
    assert models.PARAMETERIZATIONS is linear.PARAMETERIZATIONS is PARAMETERIZATIONS
