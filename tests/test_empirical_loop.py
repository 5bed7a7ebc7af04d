"""earlyphase.empirical.loop: one run's steps (sgd_updates, training_batches) are run_at_c's.

Oracle: the explicit momentum-SGD loop on sgd_batches' batches, and run_at_c's own record.
"""

import itertools

import torch

from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.objective import Batch, loss_and_gradient
from earlyphase.empirical.training import sgd_batches, sgd_updates, training_batches
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

SMALL = dict(dataset="digits", n_train=96, measure_size=48, batch_size=32, depth=3, width=16, steps=4, barrier=False)


def test_sgd_updates_are_the_explicit_loop_and_run_at_c():
    config = TrainConfig.build(**SMALL, momentum=0.9, chunk_size=20, dtype="float64")
    experiment = prepare(config)
    eta = 2.0 / experiment.lambda0
    updates = list(itertools.islice(sgd_updates(experiment, eta), config.protocol.steps))
    theta, velocity = experiment.theta0, torch.zeros_like(experiment.theta0)
    indices = sgd_batches(len(experiment.train_x), config.protocol.batch_size, config.seeds.sgd)
    for (batch_loss, theta_t), index in zip(updates, indices):
        batch = Batch.of(experiment.train_x[index], experiment.train_y[index], config.measurement.chunk_size)
        loss, gradient = loss_and_gradient(experiment.model, experiment.probe.loss_fn, theta, batch)
        velocity = config.protocol.momentum * velocity + gradient
        theta = theta - eta * velocity
        torch.testing.assert_close(theta_t, theta, rtol=1e-12, atol=1e-14)
        assert float(batch_loss) == float(loss)
    record = run_at_c(experiment, 2.0)
    assert [float(b) for b, _ in updates] == list(record.steps["batch_loss"][1:])
    assert [experiment.probe.loss(t)[0] for _, t in updates] == list(record.loss[1:])


def test_training_batches_follow_sgd_batches():
    experiment = prepare(TrainConfig.build(**SMALL, chunk_size=20))
    first = next(training_batches(experiment))
    index = next(sgd_batches(len(experiment.train_x), 32, 0))
    assert first.size == 32 and len(first.chunks) == 2
    torch.testing.assert_close(torch.cat([x for x, _ in first.chunks]), experiment.train_x[index], rtol=0, atol=0)
    full = next(training_batches(prepare(TrainConfig.build(**{**SMALL, "batch_size": None}))))
    assert full.size == 96
