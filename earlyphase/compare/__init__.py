"""earlyphase.compare: theory overlaid on measured phase diagrams, in figures and numbers.

Tables (``tables``): boundary tables (one row per source, d, w and boundary with seed
statistics) from a sweep's per-seed critical values or from theory SeedSummary objects.
Numbers: ``agreement`` (theory vs measurement in log2 units), ``collapse`` (does c depend on
d/w only), ``seed_spread`` (per-seed critical values against L_0), ``regimes`` (the four
sharpness regimes of a long run), ``protocol_gap`` (two measurement protocols on the same
seeds), ``flattening`` (post-catapult lambda_T < 2/eta and the step of the loss peak, per depth),
``saturation_clock`` (the saturation step tau_c; does c t collapse the sharpness curves of several
c). Figures: ``phase_diagram`` (1), ``trajectories`` (2, 4), ``long_run`` (3),
``saturation_clock_figure``. Pipelines (import them from their modules; they load the theory and
the empirical engine): ``theory_overlay``, ``pipeline`` (earlyphase compare), ``figures``
(earlyphase figures), ``demo`` (earlyphase demo), ``trajectory_check`` (each predictor's
L_t / L_0 and lambda_t / lambda_0 against a network's measured ones; figure in
``trajectory_check_figure``).
"""

from earlyphase.compare.agreement import agreement_summary, agreement_table, format_agreement
from earlyphase.compare.collapse import Collapse, collapse_ratio
from earlyphase.compare.flattening import flattening_counts, run_summary, sweep_run_records
from earlyphase.compare.long_run import long_run_figure, regimes_figure, sharpness_at_tau
from earlyphase.compare.phase_diagram import phase_diagram_figure, plot_phase_diagram
from earlyphase.compare.regimes import Regimes, detect_regimes
from earlyphase.compare.saturation_clock import curve_spread, saturation_clock, saturation_step
from earlyphase.compare.seed_spread import seed_spread
from earlyphase.compare.style import save_figure
from earlyphase.compare.tables import read_critical_values, seed_average, summaries_to_table
from earlyphase.compare.trajectories import early_trajectories_figure, sharpness_ratio_figure, trajectory_table

__all__ = [
    "Collapse",
    "Regimes",
    "agreement_summary",
    "agreement_table",
    "collapse_ratio",
    "curve_spread",
    "detect_regimes",
    "early_trajectories_figure",
    "flattening_counts",
    "format_agreement",
    "long_run_figure",
    "phase_diagram_figure",
    "plot_phase_diagram",
    "read_critical_values",
    "regimes_figure",
    "run_summary",
    "save_figure",
    "saturation_clock",
    "saturation_step",
    "seed_average",
    "seed_spread",
    "sharpness_at_tau",
    "sharpness_ratio_figure",
    "summaries_to_table",
    "sweep_run_records",
    "trajectory_table",
]
