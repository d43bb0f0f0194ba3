import torch
import torch.distributed as dist
import torch.nn.functional as F

from engine.tensor_parallel import TensorParallelMLP


class TPMLP(TensorParallelMLP):
    """Wrong: all-reduces the intermediate activation instead of the output. Each rank's
    activation is a different slice of the intermediate dimension, so summing them adds
    unrelated features, and the down projection then sees the sum through its own columns."""

    def __init__(self, gate, up, down, rank: int, world_size: int) -> None:
        super().__init__(gate, up, down, rank, world_size)
        shard = gate.shape[0] // world_size
        rows = slice(rank * shard, (rank + 1) * shard)
        device = self.device()
        self.gate, self.up = gate[rows].to(device), up[rows].to(device)
        self.down = down[:, rows].to(device).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(x @ self.gate.T) * (x @ self.up.T)
        dist.all_reduce(h)
        return h @ self.down.T
