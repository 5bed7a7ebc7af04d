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
