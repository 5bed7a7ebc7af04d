"""Agreement, d/w collapse, seed averages and seed spread on synthetic tables with known answers."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from earlyphase.compare.agreement import agreement_summary, agreement_table, format_agreement, log2_spread
from earlyphase.compare.collapse import collapse_ratio, group_by_ratio
from earlyphase.compare.seed_spread import format_seed_spread, linear_trend, seed_spread
from earlyphase.compare.tables import seed_average, summaries_to_table
from earlyphase.core import CRITICAL_NAMES, SeedSummary

PAIRS = [(2, 64), (4, 128), (8, 256), (2, 16), (4, 32), (2, 4), (4, 8)]


def boundary_table(
    values: dict[tuple[int, int], float], source: str = "measured", std: float = 0.0, boundary: str = "c_loss"
):
    summaries = {pair: {boundary: SeedSummary(value, std, value, value, 3, 3)} for pair, value in values.items()}
    return summaries_to_table(summaries, source=source, arch="fcn")


def test_agreement_deltas_are_the_log2_ratios_we_put_in():
    measured_values = {pair: 2.0 + i for i, pair in enumerate(PAIRS)}
    shifts = [0.0, 0.05, -0.08, 0.3, -0.5, 1.0, 0.1]
    theory_values = {pair: measured_values[pair] * 2.0**shift for pair, shift in zip(PAIRS, shifts)}
    table = agreement_table(
        boundary_table(measured_values), boundary_table(theory_values, "uv"), boundaries=("c_loss",)
    )
    by_pair = table.set_index(["depth", "width"])
    for pair, shift in zip(PAIRS, shifts):
        assert by_pair.loc[pair, "delta_log2"] == pytest.approx(shift, abs=1e-12)
        assert by_pair.loc[pair, "tolerance_log2"] == pytest.approx(0.1)  # no seed spread: one grid step
        assert by_pair.loc[pair, "agrees"] == (abs(shift) <= 0.1 + 1e-12)
    summary = agreement_summary(table).set_index("boundary").loc["c_loss"]
    assert summary["pairs"] == 7 and summary["missing"] == 0
    assert summary["agree"] == 4
    assert summary["bias_log2"] == pytest.approx(np.mean(shifts))
    assert summary["rms_log2"] == pytest.approx(np.sqrt(np.mean(np.square(shifts))))
    assert summary["max_abs_log2"] == pytest.approx(1.0)
    text = format_agreement(table, agreement_summary(table), "uv")
    assert "DISAGREES" in text and "agrees" in text and "4/7" in text


def test_agreement_rank_correlation_and_missing_values():
    measured_values = {pair: 2.0 + i for i, pair in enumerate(PAIRS)}
    reversed_theory = {pair: 10.0 - i for i, pair in enumerate(PAIRS)}
    reversed_theory[PAIRS[0]] = float("nan")  # not found in the theory's scanned range
    table = agreement_table(boundary_table(measured_values), boundary_table(reversed_theory, "linear"), ("c_loss",))
    summary = agreement_summary(table).iloc[0]
    assert summary["missing"] == 1 and summary["pairs"] == 6
    assert summary["spearman"] == pytest.approx(-1.0)
    assert not table.loc[table["depth"].eq(2) & table["width"].eq(64), "agrees"].item()


def test_seed_spread_enters_the_tolerance_in_log2_units():
    rng = np.random.default_rng(0)
    samples = 3.0 * (1.0 + 0.01 * rng.standard_normal(200_000))
    assert log2_spread(samples.mean(), samples.std()) == pytest.approx(np.log2(samples).std(), rel=1e-3)
    measured = boundary_table({(2, 16): 3.0}, std=0.3)
    theory = boundary_table({(2, 16): 3.0 * 2**0.2}, "uv", std=0.0)
    row = agreement_table(measured, theory, ("c_loss",)).iloc[0]
    assert row["tolerance_log2"] == pytest.approx(0.1 + 0.3 / (3.0 * np.log(2)))
    assert row["agrees"]  # 0.2 < 0.1 + 0.144


def test_collapse_ratio_known_variances():
    # Three d/w groups: 1/32 (3 pairs), 1/8 (2 pairs), 1/2 (1 pair); y = log2 c_loss chosen by hand.
    y = {(2, 64): 1.0, (4, 128): 1.2, (8, 256): 1.4, (2, 16): 2.0, (4, 32): 2.2, (2, 4): 3.0}
    result = collapse_ratio(boundary_table({pair: 2.0**v for pair, v in y.items()}))
    # within: (0.04 + 0 + 0.04 + 0.01 + 0.01) / (2 + 1) ; between: var([1.2, 2.1, 3.0], ddof=1) = 0.81
    assert result.within == pytest.approx(0.1 / 3)
    assert result.between == pytest.approx(0.81)
    assert result.ratio == pytest.approx((0.1 / 3) / 0.81)
    assert (result.groups, result.pairs, result.repeated_groups) == (3, 6, 2)
    assert result.partial == 0 and "caution" not in result.describe()


def test_collapse_names_pairs_whose_mean_leaves_out_seeds():
    values = {(2, 64): 4.0, (4, 128): 4.2, (2, 16): 9.0}
    summaries = {
        pair: {"c_loss": SeedSummary(value, 0.0, value, value, 1 if pair == (4, 128) else 3, 3)}
        for pair, value in values.items()
    }
    result = collapse_ratio(summaries_to_table(summaries, source="measured", arch="fcn"))
    assert result.partial == 1
    assert "caution: at 1 of the 3 pairs some seeds have no c_loss" in result.describe()


def test_collapse_is_perfect_for_a_function_of_d_over_w():
    values = {pair: 2.0 + 40.0 * pair[0] / pair[1] for pair in PAIRS}
    result = collapse_ratio(boundary_table(values))
    assert result.within == pytest.approx(0.0, abs=1e-24)
    assert result.ratio == pytest.approx(0.0, abs=1e-20)


def test_group_by_ratio_tolerance():
    labels = group_by_ratio(np.array([1 / 32, 1.1 / 32, 1 / 8, 1 / 2, 0.9 / 8]), tolerance_log2=0.25)
    assert labels[0] == labels[1] and labels[2] == labels[4]
    assert len({labels[0], labels[2], labels[3]}) == 3


def per_seed_frame(rng: np.random.Generator, seeds: int = 5) -> pd.DataFrame:
    rows = []
    for depth, width in PAIRS[:3]:
        for seed in range(seeds):
            row = {"arch": "fcn", "depth": depth, "width": width, "seed_init": seed, "seed_sgd": seed}
            for name in CRITICAL_NAMES:
                value = float(2 ** rng.uniform(1, 3))
                row |= {name: value, f"{name}_low": value / 2**0.1, f"{name}_high": value}
            row["loss0"] = float(rng.uniform(0.4, 0.7))
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame.loc[0, ["c_sharp", "c_sharp_high"]] = np.nan  # one seed did not reach c_sharp
    return frame


def test_seed_average_matches_numpy():
    per_seed = per_seed_frame(np.random.default_rng(1))
    table = seed_average(per_seed)
    assert len(table) == 3 * len(CRITICAL_NAMES)
    for (depth, width), group in per_seed.groupby(["depth", "width"]):
        for name in CRITICAL_NAMES:
            row = table[(table["depth"] == depth) & (table["width"] == width) & (table["boundary"] == name)].iloc[0]
            values = group[name].dropna().to_numpy()
            assert row["mean"] == pytest.approx(values.mean())
            assert row["std"] == pytest.approx(values.std())
            assert row["low"] == pytest.approx(group.dropna(subset=[name])[f"{name}_low"].mean())  # the found seeds'
            assert (row["found"], row["seeds"]) == (values.size, len(group))
            assert row["d_over_w"] == depth / width


def test_seed_average_rejects_a_table_without_brackets():
    with pytest.raises(ValueError, match="missing columns"):
        seed_average(pd.DataFrame({"arch": ["fcn"], "depth": [2], "width": [8], "c_loss": [2.0]}))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.1, 2.0), st.floats(1.0, 20.0)), min_size=3, max_size=12, unique_by=lambda p: p[0])
)
def test_linear_trend_matches_scipy(points):
    x, y = map(np.array, zip(*points))
    slope, intercept, r = linear_trend(x, y)
    reference = stats.linregress(x, y)
    assert slope == pytest.approx(reference.slope, rel=1e-6, abs=1e-9)
    assert intercept == pytest.approx(reference.intercept, rel=1e-6, abs=1e-9)
    if np.ptp(y) > 0:
        assert r == pytest.approx(reference.rvalue, rel=1e-6, abs=1e-9)


def test_seed_spread_recovers_an_exact_trend():
    per_seed = per_seed_frame(np.random.default_rng(2))
    per_seed["c_loss"] = 3.0 + 2.0 * per_seed["loss0"]
    spread = seed_spread(per_seed, "c_loss")
    assert np.allclose(spread["slope"], 2.0) and np.allclose(spread["intercept"], 3.0)
    assert np.allclose(spread["pearson_r"], 1.0)
    assert spread["seeds"].tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match="loss0"):
        seed_spread(per_seed.drop(columns="loss0"))


def test_critical_value_table_has_one_line_per_pair():
    from earlyphase.compare.report import format_critical_values

    values = {(2, 16): 2.5, (4, 32): 3.5, (4, 64): float("nan")}
    text = format_critical_values(boundary_table(values)).splitlines()
    assert len(text) == 1 + len(values)  # header + one line per (d, w), no cross product of d and w
    assert text[1].split()[:3] == ["4", "64", "0.0625"] and "not found" in text[1]
    assert "2.5 ± 0" in text[2] and "3.5 ± 0" in text[3]


def test_agreement_summary_when_nothing_is_comparable():
    measured = boundary_table({(2, 16): float("nan")}, boundary="c_max")
    theory = boundary_table({(2, 16): 4.0}, "uv", boundary="c_max")
    table = agreement_table(measured, theory, ("c_max",))
    text = format_agreement(table, agreement_summary(table), "uv")
    assert "c_max: no (d, w) where both uv and measurement found it (1 not comparable)" in text


def test_seed_spread_of_two_seeds_prints_n_a_and_why():
    per_seed = pd.DataFrame({"depth": [2, 2], "width": [32, 32], "loss0": [0.4, 0.6], "c_loss": [3.0, 5.0]})
    spread = seed_spread(per_seed, "c_loss")
    assert np.isnan(spread.loc[0, "pearson_r"])
    text = format_seed_spread(spread)
    assert "nan" not in text.lower()
    row = text.splitlines()[1].split()
    assert row[-2:] == ["n/a", "+10"]  # r not computed; the slope of two points is
    assert "(r n/a: needs >= 3 seeds)" in text
