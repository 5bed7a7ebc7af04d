"""How many ensemble members fit the device at once, and the peak memory actually used.

An estimate of the bytes one member needs (a model of what lives during a step), against a
budget: on CUDA a fraction of the free device memory (``torch.cuda.mem_get_info``), on the CPU a
given number of bytes or half the available RAM. Per member, with P parameters of s bytes
(the network dtype), a activation values per example (the outputs of every leaf module,
counted on one example) and n_h, n_g, n_e examples per pass for the Hessian products
(measurement batch), the gradient (SGD batch) and the loss (evaluation set), each capped by
``chunk_size``:

    bytes = s (PARAM_COPIES P + a max(HVP_ACTIVATIONS n_h, GRADIENT_ACTIVATIONS n_g, n_e))
            + 8 P (basis_rows + LANCZOS_VECTORS)

basis_rows = EXPECTED_BASIS_ROWS for warm-started solves (their Krylov basis rarely grows past
it; one that does grows the buffer beyond the estimate), else lanczos_max_iter.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

import torch

from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.functional import FlatModel

CUDA_FRACTION = 0.8
"""Fraction of the free CUDA memory an ensemble may plan to use."""
CPU_FRACTION = 0.5
"""Fraction of the available RAM used as the CPU budget when none is given."""
PARAM_COPIES = 12
"""Parameter-sized tensors in the network dtype per member (theta, gradient, velocity, theta_0, path points, temporaries)."""
HVP_ACTIVATIONS = 8
"""Copies of the activations alive in a forward-over-reverse Hessian-vector product (primal, tangent and their cotangents)."""
GRADIENT_ACTIVATIONS = 4
LANCZOS_VECTORS = 8
"""float64 parameter-sized vectors of a Lanczos solve besides its basis (q, w, starts, projections)."""
EXPECTED_BASIS_ROWS = 32


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per member (estimate), the budget, and the members per chunk that fit it."""

    bytes_per_member: int
    budget: int
    members_per_chunk: int

    def describe(self) -> str:
        return (
            f"{self.bytes_per_member / 2**20:.1f} MiB per member (estimate), budget {self.budget / 2**30:.2f} GiB: "
            f"{self.members_per_chunk} members per chunk"
        )


def activation_numel(model: FlatModel, example: torch.Tensor) -> int:
    """Number of values output by the leaf modules of ``model`` for ONE example (shape (1, ...))."""
    total = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.module.modules() if not any(True for _ in m.children())]
    handles = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        with torch.no_grad():
            model.module(example)
    finally:
        for handle in handles:
            handle.remove()
    return total


def member_bytes(
    config: TrainConfig, num_params: int, activations: int, itemsize: int, measure_size: int, eval_size: int
) -> int:
    """The per-member estimate of the module docstring."""

    def per_pass(examples: int) -> int:
        return examples if config.measurement.chunk_size is None else min(examples, config.measurement.chunk_size)

    sgd = eval_size if config.protocol.batch_size is None else config.protocol.batch_size
    examples = max(HVP_ACTIVATIONS * per_pass(measure_size), GRADIENT_ACTIVATIONS * per_pass(sgd), per_pass(eval_size))
    rows = min(config.measurement.lanczos_max_iter, num_params)
    basis_rows = min(EXPECTED_BASIS_ROWS, rows) if config.measurement.warm_start else rows
    return itemsize * (PARAM_COPIES * num_params + activations * examples) + 8 * num_params * (
        basis_rows + LANCZOS_VECTORS
    )


def memory_budget(device: torch.device, budget: int | None = None) -> int:
    """``budget`` bytes if given; else CUDA_FRACTION of the free CUDA memory, or CPU_FRACTION of the available RAM."""
    if budget is not None:
        if budget <= 0:
            raise ValueError(f"memory budget must be > 0 bytes, got {budget}")
        return int(budget)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(CUDA_FRACTION * free)
    return int(CPU_FRACTION * os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def plan_memory(bytes_per_member: int, budget: int) -> MemoryPlan:
    """At least one member per chunk, else as many as the budget holds."""
    return MemoryPlan(bytes_per_member, budget, max(1, budget // max(bytes_per_member, 1)))


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory measurement (CUDA; the CPU high-water mark cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> int:
    """Peak bytes: torch.cuda.max_memory_allocated on CUDA, the process's maximum resident set on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
