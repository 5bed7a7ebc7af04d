"""Theory predictions at the measured (depth, width) pairs, as boundary tables.

Wraps ``earlyphase.theory.predict.predict_critical_values`` (uv model or deep linear nets,
ensembles over initialisations, the same protocol and threshold definitions as the real
nets). The uv model has no depth: its prediction at width w is listed at every measured
depth of that width (column ``model_depth`` = 2 says what was computed).

``predicted_per_seed`` keeps each seed's thresholds with that seed's initial loss L_0, for the
seed-spread analysis of the theory (``earlyphase.compare.seed_spread``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from earlyphase.compare.tables import BOUNDARY_COLUMNS
from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.validate import ConfigError
from earlyphase.theory.predict import Prediction, grid_rows, predict_critical_values

THEORY_NAMES = {"uv": "uv model", "linear": "deep linear net"}


def model_pairs(model: str, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """{(depth, width) the model computes: [measured (depth, width) it stands for]}."""
    if model not in THEORY_NAMES:
        raise ConfigError(f"theory must be one of {sorted(THEORY_NAMES)}, got {model!r}", "theory")
    mapping: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for depth, width in sorted(set(pairs)):
        mapping.setdefault((2, width) if model == "uv" else (depth, width), []).append((depth, width))
    return mapping


def predictions(
    model: str, pairs: Sequence[tuple[int, int]], seeds: int = 16, progress: bool = True, **options: Any
) -> list[tuple[Prediction, list[tuple[int, int]]]]:
    """One ``Prediction`` per distinct model size, with the measured pairs it stands for."""
    mapping = model_pairs(model, pairs)
    results = []
    for (depth, width), measured in tqdm(mapping.items(), desc=f"theory: {model}", unit="(d,w)", disable=not progress):
        results.append((predict_critical_values(model, depth, width, seeds=seeds, **options), measured))
    return results


@dataclass(frozen=True)
class TheoryTables:
    """A theory's boundary table at the measured pairs and its per-seed table at the sizes computed."""

    model: str
    boundaries: pd.DataFrame
    per_seed: pd.DataFrame


def predict_at(
    model: str, pairs: Sequence[tuple[int, int]], seeds: int = 16, progress: bool = True, **options: Any
) -> TheoryTables:
    """Predict with ``model`` at the measured ``pairs``: boundary table and per-seed table."""
    rows, per_seed = [], []
    for prediction, measured in predictions(model, pairs, seeds, progress, **options):
        for row in grid_rows(prediction):
            for depth, width in measured:
                rows.append(
                    {**row, "model_depth": row["depth"], "depth": depth, "width": width, "d_over_w": depth / width}
                )
        per_seed.append(predicted_per_seed(prediction))
    table = pd.DataFrame(rows)
    table = table[[*BOUNDARY_COLUMNS, *(c for c in table.columns if c not in BOUNDARY_COLUMNS)]]
    return TheoryTables(model, table, pd.concat(per_seed, ignore_index=True))


def predicted_table(
    model: str, pairs: Sequence[tuple[int, int]], seeds: int = 16, progress: bool = True, **options: Any
) -> pd.DataFrame:
    """Boundary table (``earlyphase.compare.tables``) of ``model`` at the measured ``pairs``."""
    return predict_at(model, pairs, seeds, progress, **options).boundaries


def predicted_per_seed(prediction: Prediction) -> pd.DataFrame:
    """Per-seed table (depth, width, seed_init, loss0, lambda0, c_* estimates) of one prediction."""
    config = prediction.config
    rows = []
    for seed, critical, loss0, lambda0 in zip(
        config.seed_list, prediction.critical, prediction.loss0, prediction.lambda0
    ):
        row = {
            "depth": config.depth,
            "width": config.width,
            "seed_init": seed,
            "loss0": float(loss0),
            "lambda0": float(lambda0),
        }
        row.update({name: getattr(critical, name).estimate for name in CRITICAL_NAMES})
        rows.append(row)
    return pd.DataFrame(rows)
