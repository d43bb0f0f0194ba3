import torch


class W8A16Linear:
    """Wrong: truncates toward zero (a cast) instead of rounding to nearest."""

    def __init__(self, weight):
        self.scale = weight.float().abs().amax(dim=1) / 127
        self.weight = (weight.float() / self.scale[:, None]).to(torch.int8)

    def __call__(self, x):
        return (x.float() @ (self.weight.float() * self.scale[:, None]).T).to(x.dtype)
