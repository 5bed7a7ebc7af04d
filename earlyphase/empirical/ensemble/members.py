"""The members of an ensemble and what they share: one architecture, data and protocol.

A member is one run (c, seed_init, seed_sgd) of a ``TrainConfig`` family. Members with the same
``seed_init`` share theta_0, lambda_H0 and L_0 and each trains at its own eta = c / lambda_H0;
members with the same ``seed_sgd`` share the batch order. Every (seed_init, seed_sgd) pair has
the ``Experiment`` that ``earlyphase.empirical.training.prepare`` builds for it, so a member's
record is the one ``run_at_c(experiment, c)`` would produce.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from earlyphase.core.validate import require_int, require_positive
from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.data import Dataset
from earlyphase.empirical.training import Experiment, ModelSource, load_training_data, prepare


@dataclass(frozen=True)
class Member:
    """One run of an ensemble: eta = c / lambda_H0(seed_init), batch order from seed_sgd."""

    c: float
    seed_init: int = 0
    seed_sgd: int = 0

    def __post_init__(self) -> None:
        require_positive("c", self.c)
        require_int("seed_init", self.seed_init, minimum=0)
        require_int("seed_sgd", self.seed_sgd, minimum=0)

    @property
    def seeds(self) -> tuple[int, int]:
        return self.seed_init, self.seed_sgd


@dataclass(frozen=True, eq=False)
class Ensemble:
    """The prepared experiments of a run family, one per (seed_init, seed_sgd) pair.

    They share the data tensors and the measurement batch (the config's seed_measure), so the
    device holds one copy; each has its own theta_0 and initial measurement per seed_init.
    """

    config: TrainConfig
    experiments: Mapping[tuple[int, int], Experiment]

    def experiment(self, member: Member) -> Experiment:
        """The experiment ``run_at_c`` would use for ``member``."""
        try:
            return self.experiments[member.seeds]
        except KeyError:
            raise ValueError(
                f"member seeds (init {member.seed_init}, sgd {member.seed_sgd}) were not prepared; "
                f"prepared: {sorted(self.experiments)}"
            ) from None

    @property
    def shared(self) -> Experiment:
        """Any one experiment: the model, the data and the probe every member uses."""
        return next(iter(self.experiments.values()))


def prepare_ensemble(
    config: TrainConfig,
    seeds: Iterable[tuple[int, int]],
    dataset: Dataset | None = None,
    model: ModelSource | None = None,
) -> Ensemble:
    """Prepare every (seed_init, seed_sgd) pair of ``seeds`` (theta_0 and lambda_H0 once per seed_init).

    ``config``'s own seed_init / seed_sgd are replaced by each pair's. The data is loaded once
    (or ``dataset`` is used) and its device tensors are shared by all experiments. ``model``: as
    for ``prepare`` (a custom module or factory with arch "custom").
    """
    pairs = sorted(set(seeds))
    if not pairs:
        raise ValueError("an ensemble needs at least one (seed_init, seed_sgd) pair")
    dataset = load_training_data(config) if dataset is None else dataset
    by_init: dict[int, Experiment] = {}
    experiments: dict[tuple[int, int], Experiment] = {}
    for seed_init, seed_sgd in pairs:
        if seed_init not in by_init:
            prepared = prepare(config.replace(seed_init=seed_init, seed_sgd=seed_sgd), dataset, model)
            by_init[seed_init] = prepared if not by_init else _share_data(prepared, next(iter(by_init.values())))
        base = by_init[seed_init]
        experiments[(seed_init, seed_sgd)] = replace(base, config=base.config.replace(seed_sgd=seed_sgd))
    return Ensemble(config=config.replace(seed_init=pairs[0][0], seed_sgd=pairs[0][1]), experiments=experiments)


def _share_data(experiment: Experiment, holder: Experiment) -> Experiment:
    """``experiment`` using ``holder``'s data tensors (equal content: same data and seed_measure)."""
    probe = replace(experiment.probe, measure_batch=holder.probe.measure_batch, eval_batch=holder.probe.eval_batch)
    return replace(experiment, train_x=holder.train_x, train_y=holder.train_y, probe=probe)
