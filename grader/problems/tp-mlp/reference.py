import torch
import torch.distributed as dist
import torch.nn.functional as F

from engine.tensor_parallel import TensorParallelMLP


class TPMLP(TensorParallelMLP):
    """Megatron's split: this rank's rows of gate and up fused into one [2 * I / W, H] matrix
    (one matmul for both), its columns of down, and one in-place all-reduce of the partial
    sums."""

    def __init__(self, gate, up, down, rank: int, world_size: int) -> None:
        super().__init__(gate, up, down, rank, world_size)
        shard = gate.shape[0] // world_size
        rows = slice(rank * shard, (rank + 1) * shard)
        device = self.device()
        # gate's rows then up's rows of this rank: the first half of the product is the gate
        self.gate_up = torch.cat([gate[rows], up[rows]]).to(device).contiguous()
        self.down = down[:, rows].to(device).contiguous()
        self.shard = shard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = x @ self.gate_up.T
        h = F.silu(gate_up[:, : self.shard]) * gate_up[:, self.shard :]
        y = h @ self.down.T
        dist.all_reduce(y)
        return y
