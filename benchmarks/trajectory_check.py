"""Predicted against measured L_t / L_0 and lambda_t / lambda_0, network by network (docs/RESULTS.md).

    python benchmarks/trajectory_check.py            # digits: d = 2, w = 256 and d = 8, w = 32, seeds 0 and 1
    python benchmarks/trajectory_check.py --redraw   # the figures from the committed CSV only

Each network is prepared with the committed digits sweep's configuration (``earlyphase figures``'
``FigureSettings``: all 1797 examples, B = 512, T = 10, MSE, sharpness on every example) with every
step's sharpness solved (measure_mode "full") and no barrier, and checked by
``earlyphase.compare.trajectory_check`` at c = 1, 2, 4, 8. Writes
figures/data/predicted_vs_measured_trajectories.csv (one row per network, source, c and step) and
figures/predicted_vs_measured_trajectories{,_sharpness}.png, and prints the summary per network
and c (L_1 / L_0, L_T / L_0, lambda_T / lambda_0). One torch thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from earlyphase.compare.figures import FigureSettings, sweep_mapping
from earlyphase.compare.trajectory_check import trajectory_check
from earlyphase.compare.trajectory_check_figure import NETWORK_COLUMNS, trajectory_check_figure
from earlyphase.empirical.sweep import spec_from_mapping
from earlyphase.empirical.training import prepare

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "figures/data/predicted_vs_measured_trajectories.csv"
FIGURES = {
    "loss_ratio": ROOT / "figures/predicted_vs_measured_trajectories.png",
    "sharpness_ratio": ROOT / "figures/predicted_vs_measured_trajectories_sharpness.png",
}
NETWORKS = ((2, 256, 0), (2, 256, 1), (8, 32, 0), (8, 32, 1))
"""(depth, width, seed_init): two seeds at each end of the digits sweep's d/w."""
C_VALUES = (1.0, 2.0, 4.0, 8.0)


def measure(networks: tuple[tuple[int, int, int], ...]) -> pd.DataFrame:
    """The trajectory-check tables of every network, one long table with the network's columns."""
    spec = spec_from_mapping(sweep_mapping(FigureSettings()))
    points = {(p.depth, p.width, p.seed_init): p for p in spec.points()}
    tables = []
    for key in networks:
        started = time.perf_counter()
        config = spec.config(points[key]).replace(measure_mode="full", barrier=False)
        check = trajectory_check(prepare(config), C_VALUES)
        labels = dict(zip(NETWORK_COLUMNS, key))
        tables.append(check.table().assign(**labels))
        skipped = f", not available: {check.not_available}" if check.not_available else ""
        print(f"d={key[0]} w={key[1]} seed {key[2]}: {time.perf_counter() - started:.0f} s{skipped}", flush=True)
    columns = list(NETWORK_COLUMNS)
    table = pd.concat(tables, ignore_index=True)
    return table[columns + [c for c in table.columns if c not in columns]]


def summary_of(table: pd.DataFrame) -> pd.DataFrame:
    """L_1 / L_0, lambda_1 / lambda_0, L_T / L_0 and lambda_T / lambda_0 (T = the table's last step)
    per network, source and c (``TrajectoryCheck.summary`` of the stored table)."""
    last = int(table["step"].max())
    keys = list(NETWORK_COLUMNS) + ["source", "c"]
    first = table[table["step"] == 1].set_index(keys)[["loss_ratio", "sharpness_ratio"]]
    first = first.rename(columns={"loss_ratio": "loss_1", "sharpness_ratio": "sharpness_1"})
    final = table[table["step"] == last].set_index(keys)[["loss_ratio", "sharpness_ratio"]]
    final = final.rename(columns={"loss_ratio": "loss_T", "sharpness_ratio": "sharpness_T"})
    return pd.concat([first, final], axis=1).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redraw", action="store_true", help="only redraw the figures from the committed CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.redraw:
        table = pd.read_csv(TABLE)
    else:
        table = measure(NETWORKS)
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(TABLE, index=False, float_format="%.6g")
        print(f"data:   {TABLE}")
    for quantity, path in FIGURES.items():
        print(f"wrote:  {trajectory_check_figure(table, quantity, path, 'ReLU FCNs on digits')}")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(summary_of(table).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
