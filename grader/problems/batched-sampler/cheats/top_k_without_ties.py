import torch

from engine.sampler import Sampler, SamplingBatch, sample_inverse_cdf


class BatchedSampler(Sampler):
    """Cheat (a wrong tie rule): `sample` keeps exactly k tokens of a top-k row with
    `torch.topk`, dropping the tokens tied with the k-th, and draws among those. Every token it
    draws is in the support, and random logits never tie, so only tied logits show it."""

    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        greedy = batch.temperature == 0
        x = logits.float() / torch.where(greedy, 1.0, batch.temperature)[:, None]
        vocab = x.shape[-1]
        first = torch.nn.functional.one_hot(x.argmax(-1), vocab).bool()
        x = x.masked_fill(greedy[:, None] & ~first, float("-inf"))
        ordered, order = x.sort(dim=-1, descending=True)
        k = torch.where(batch.top_k > 0, batch.top_k, vocab).clamp(max=vocab)
        ordered = ordered.masked_fill(ordered < ordered.gather(1, (k - 1)[:, None]), float("-inf"))
        p = ordered.softmax(dim=-1)
        drop = (1 - (p.cumsum(dim=-1) - p)) <= (1 - batch.top_p)[:, None]
        drop[:, 0] = False
        ordered = ordered.masked_fill(drop & (batch.top_p < 1)[:, None], float("-inf"))
        p = ordered.softmax(dim=-1)
        drop = p < batch.min_p[:, None] * p[:, :1]
        drop[:, 0] = False
        ordered = ordered.masked_fill(drop, float("-inf"))
        return torch.empty_like(ordered).scatter_(1, order, ordered.softmax(dim=-1))

    def sample(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        probs = self.probs(logits, batch)
        vocab = probs.shape[-1]
        k = torch.where(batch.top_k > 0, batch.top_k, vocab).clamp(max=vocab)
        kept = torch.zeros_like(probs, dtype=torch.bool)
        for row in range(probs.shape[0]):
            kept[row, probs[row].topk(int(k[row])).indices] = True
        sampled = sample_inverse_cdf(probs * kept, batch.uniforms)
        return torch.where(batch.temperature == 0, logits.argmax(dim=-1), sampled)
