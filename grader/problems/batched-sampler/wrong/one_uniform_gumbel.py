import torch

from engine.sampler import Sampler, SamplingBatch


class BatchedSampler(Sampler):
    """Wrong: a biased sampler. probs() is right, but sample() uses the Gumbel-max trick with
    the row's one uniform as the noise of every token: the same noise everywhere leaves the
    argmax unchanged, so every row is greedy."""

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
        above = p.cumsum(dim=-1) - p
        drop = (1 - above) <= (1 - batch.top_p)[:, None]
        drop[:, 0] = False
        ordered = ordered.masked_fill(drop & (batch.top_p < 1)[:, None], float("-inf"))
        # min-p, relative to the most likely token left
        p = ordered.softmax(dim=-1)
        drop = p < batch.min_p[:, None] * p[:, :1]
        drop[:, 0] = False
        ordered = ordered.masked_fill(drop, float("-inf"))
        return torch.empty_like(ordered).scatter_(1, order, ordered.softmax(dim=-1))

    def sample(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        gumbel = -torch.log(-torch.log(batch.uniforms.clamp(1e-12, 1 - 1e-12)))
        scores = self.probs(logits, batch).log() + gumbel[:, None].float()
        return scores.argmax(dim=-1)
