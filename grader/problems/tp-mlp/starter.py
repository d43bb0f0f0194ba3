import torch
import torch.distributed as dist

from engine.tensor_parallel import TensorParallelMLP


class TPMLP(TensorParallelMLP):
    """Column-parallel gate and up, row-parallel down, one all-reduce (see the statement)."""

    def __init__(self, gate, up, down, rank: int, world_size: int) -> None:
        super().__init__(gate, up, down, rank, world_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(dist.get_world_size())
