import torch
import torch.distributed as dist
import torch.nn.functional as F

from engine.tensor_parallel import TensorParallelMLP


class TPMLP(TensorParallelMLP):
    """Wrong: shards gate and up inconsistently. It fuses them into one [2I, H] matrix as a
    checkpoint stores gate_up_proj, then gives each rank a contiguous half of the fused rows,
    the split of a plain column-parallel layer: rank 0 gets all of gate and rank 1 all of up,
    and each rank then pairs its first half of rows with its second as gate and up."""

    def __init__(self, gate, up, down, rank: int, world_size: int) -> None:
        super().__init__(gate, up, down, rank, world_size)
        fused = torch.cat([gate, up])
        shard = fused.shape[0] // world_size
        self.gate_up = fused[rank * shard : (rank + 1) * shard].to(self.device())
        inter = gate.shape[0] // world_size
        self.down = down[:, rank * inter : (rank + 1) * inter].to(self.device()).contiguous()
        self.half = inter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = x @ self.gate_up.T
        h = F.silu(gate_up[:, : self.half]) * gate_up[:, self.half :]
        y = h @ self.down.T
        dist.all_reduce(y)
        return y
