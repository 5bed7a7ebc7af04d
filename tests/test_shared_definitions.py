"""Settings shared by theory and experiment are defined once, in earlyphase.core, and used by both."""

import inspect

from earlyphase.core.conventions import LANCZOS_MAX_ITER, LANCZOS_TOL, PARAMETERIZATIONS
from earlyphase.core.grid import DEFAULT_X_MAX, c_grid
from earlyphase.core.search import CGrid
from earlyphase.empirical import models
from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.curvature.lanczos import lanczos_top
from earlyphase.empirical.sweep.spec import SearchSpec
from earlyphase.theory import linear
from earlyphase.theory.lanczos import LanczosSettings
from earlyphase.theory.predict import PredictConfig


def test_one_grid_top_for_theory_and_experiment():
    assert inspect.signature(c_grid).parameters["x_max"].default == DEFAULT_X_MAX
    assert CGrid().x_max == SearchSpec().x_max == PredictConfig().x_max == DEFAULT_X_MAX
    assert c_grid()[-1] == 2.0**DEFAULT_X_MAX


def test_one_lanczos_tolerance():
    defaults = inspect.signature(lanczos_top).parameters
    assert LanczosSettings().tol == defaults["tol"].default == TrainConfig().measurement.lanczos_tol == LANCZOS_TOL
    assert defaults["max_iter"].default == TrainConfig().measurement.lanczos_max_iter == LANCZOS_MAX_ITER


def test_one_list_of_parameterisations():
    assert models.PARAMETERIZATIONS is linear.PARAMETERIZATIONS is PARAMETERIZATIONS
