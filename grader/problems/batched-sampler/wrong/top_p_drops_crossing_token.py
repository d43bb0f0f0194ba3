import torch

from engine.sampler import Sampler, SamplingBatch


class BatchedSampler(Sampler):
    """Wrong: an off-by-one in top-p. It drops every token after the running sum first
    exceeds top_p, the token that crosses the threshold included, so the nucleus is one token
    short (transformers keeps the smallest set whose mass reaches top_p)."""

    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        greedy = batch.temperature == 0
        logits = logits.float() / torch.where(greedy, 1.0, batch.temperature)[:, None]
        vocab = logits.shape[-1]
        if bool(greedy.any()):
            # a greedy row keeps only its argmax
            keep = torch.nn.functional.one_hot(logits.argmax(-1), vocab).bool()
            logits = logits.masked_fill(greedy[:, None] & ~keep, float("-inf"))
        ordered, order = logits.sort(dim=-1, descending=True)
        # top-k: everything below the k-th largest logit goes (ties at the k-th value stay)
        k = torch.where(batch.top_k > 0, batch.top_k, vocab).clamp(max=vocab)
        ordered = ordered.masked_fill(ordered < ordered.gather(1, (k - 1)[:, None]), float("-inf"))
        # top-p: a token's ascending cumulative probability is 1 - (the mass strictly above it)
        p = ordered.softmax(dim=-1)
        drop = p.cumsum(dim=-1) > batch.top_p[:, None]
        drop[:, 0] = False
        ordered = ordered.masked_fill(drop & (batch.top_p < 1)[:, None], float("-inf"))
        # min-p, relative to the most likely token left
        p = ordered.softmax(dim=-1)
        drop = p < batch.min_p[:, None] * p[:, :1]
        drop[:, 0] = False
        ordered = ordered.masked_fill(drop, float("-inf"))
        return torch.empty_like(ordered).scatter_(1, order, ordered.softmax(dim=-1))
