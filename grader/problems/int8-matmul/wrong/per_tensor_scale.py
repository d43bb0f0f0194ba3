import torch


class W8A16Linear:
    """Wrong: one scale for the whole tensor, so small channels lose most of their bits."""

    def __init__(self, weight):
        self.scale = weight.float().abs().max() / 127
        self.weight = torch.round(weight.float() / self.scale).clamp(-127, 127).to(torch.int8)

    def __call__(self, x):
        return (x.float() @ (self.weight.float() * self.scale).T).to(x.dtype)
