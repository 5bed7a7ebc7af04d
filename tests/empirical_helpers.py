"""Shared pieces of the tests/test_empirical_*.py files."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny networks on a shared, busy CPU: one torch thread avoids spin-wait contention."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TINY_TRAIN = ["train", "--depth", "2", "--width", "4", "--n-train", "32", "--measure-size", "8"]
"""The start of an ``earlyphase train`` command line for a tiny digits FCN (2 layers of width 4, 32 examples)."""
ONE_STEP_TRAIN = [*TINY_TRAIN, "--steps", "1", "--c", "1", "--no-barrier", "--threads", "1"]
"""``TINY_TRAIN`` for one step at c = 1 on one thread, without the barrier: the cheapest record."""
