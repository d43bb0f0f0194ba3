import torch

from engine.sampler import Sampler, SamplingBatch, sample_inverse_cdf


class BatchedSampler(Sampler):
    """Cheat (a realistic bug): `sample` has a fast path for batches without top-k, top-p or
    min-p that draws from softmax(logits), forgetting the temperature. `probs` is right, every
    token is in the support, and the one chi-square test without filters runs at temperature 1,
    where the bug changes nothing."""

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
        if batch.any_filter or batch.all_greedy:
            return super().sample(logits, batch)
        sampled = sample_inverse_cdf(logits.float().softmax(dim=-1), batch.uniforms)
        return torch.where(batch.temperature == 0, logits.argmax(dim=-1), sampled)
