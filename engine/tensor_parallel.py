"""Tensor parallelism for the MLP: the `TensorParallelMLP` interface, one rank's part of a
Llama MLP split over the ranks of a `torch.distributed` process group (Megatron-LM's split)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class TensorParallelMLP(ABC):
    """One rank's part of a Llama MLP, `y = down(silu(gate(x)) * up(x))`, over `world_size`
    ranks whose default process group is already initialised (`torch.distributed`: gloo on a
    CPU, NCCL on GPUs, rank `r` on `cuda:r`).

    `__init__(gate, up, down, rank, world_size)` receives the full weights, on the CPU, as a
    weight loader reads them from a checkpoint: `gate` and `up` `[intermediate, hidden]`,
    `down` `[hidden, intermediate]`, `intermediate` a multiple of `world_size`. Keep this
    rank's shards only (on `device()`):

    - gate and up are column-parallel: rank `r` keeps the same rows `[r * I / W, (r + 1) * I / W)`
      of both, so `silu(x @ gate_r.T) * (x @ up_r.T)` is this rank's slice of the intermediate
      activation, with no communication;
    - down is row-parallel: rank `r` keeps the same columns of `down`, so
      `h_r @ down_r.T` is this rank's partial sum of `y`;
    - one `all_reduce` (a sum) of the partial sums gives every rank the whole `y`.

    `forward(x)` takes `x` `[tokens, hidden]` on `device()` (every rank gets the same `x`) and
    returns `y` `[tokens, hidden]` on every rank, equal to the single-device MLP
    `(silu(x @ gate.T) * (x @ up.T)) @ down.T` within the rounding of another summation order.

    Example (two ranks, hidden 2, intermediate 4)::

        gate = up = torch.eye(4, 2); down = torch.eye(2, 4)
        # rank 0 keeps rows 0-1 of gate and up and columns 0-1 of down; rank 1 rows 2-3 and
        # columns 2-3. For x = [[1., 2.]]: rank 0's partial sum is [[0.731, 3.523]]
        # (silu(1) * 1, silu(2) * 2), rank 1's is [[0, 0]] (its rows of gate are zero), and
        # after the all-reduce both return [[0.731, 3.523]].

    Each rank runs in its own process; the computation must be split, each rank doing its
    own shard's share of the work (the judge measures each process's CPU time).
    """

    def __init__(
        self,
        gate: torch.Tensor,
        up: torch.Tensor,
        down: torch.Tensor,
        rank: int,
        world_size: int,
    ) -> None:
        self.rank = rank
        self.world_size = world_size

    def device(self) -> torch.device:
        """Where this rank's shards and its `x` live: `cuda:rank` under NCCL, else the CPU."""
        import torch.distributed as dist

        if dist.get_backend() == "nccl":
            return torch.device("cuda", self.rank)
        return torch.device("cpu")

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[tokens, hidden]`: the whole MLP's output, on every rank (see the class docstring)."""
