import torch

from engine.sampler import Sampler, SamplingBatch


class BatchedSampler(Sampler):
    """Correct and slow: each row filtered on its own, then its token drawn by a Python loop
    over the whole vocabulary (greedy rows too). The tests accept it; the throughput test
    shows what the loop costs the engine."""

    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        rows = [self._row_probs(logits[r], batch, r) for r in range(logits.shape[0])]
        return torch.stack(rows)

    @staticmethod
    def _row_probs(logits: torch.Tensor, batch: SamplingBatch, r: int) -> torch.Tensor:
        temperature = float(batch.temperature[r])
        vocab = logits.shape[-1]
        x = logits.float() / (temperature if temperature > 0 else 1.0)
        if temperature == 0:
            keep = torch.zeros(vocab, dtype=torch.bool)
            keep[int(x.argmax())] = True
            x = x.masked_fill(~keep, float("-inf"))
        ordered, order = x.sort(descending=True)
        k = int(batch.top_k[r]) or vocab
        ordered = ordered.masked_fill(ordered < ordered[min(k, vocab) - 1], float("-inf"))
        p = ordered.softmax(dim=-1)
        drop = (1 - (p.cumsum(dim=-1) - p)) <= (1 - batch.top_p[r])
        drop[0] = False
        if float(batch.top_p[r]) < 1:
            ordered = ordered.masked_fill(drop, float("-inf"))
        p = ordered.softmax(dim=-1)
        drop = p < batch.min_p[r] * p[0]
        drop[0] = False
        ordered = ordered.masked_fill(drop, float("-inf"))
        return torch.empty_like(ordered).scatter_(0, order, ordered.softmax(dim=-1))

    def sample(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        probs = self.probs(logits, batch)
        tokens = []
        for r, weights in enumerate(probs.double().tolist()):
            if float(batch.temperature[r]) == 0:
                values = logits[r].float().tolist()
                best = 0
                for token, value in enumerate(values):
                    if value > values[best]:
                        best = token
                tokens.append(best)
                continue
            cumulative, total = [], 0.0
            for weight in weights:
                total += weight
                cumulative.append(total)
            goal = float(batch.uniforms[r]) * total
            chosen = len(weights) - 1
            for token, value in enumerate(cumulative):
                if value > goal:
                    chosen = token
                    break
            tokens.append(chosen)
        return torch.tensor(tokens, dtype=torch.int64)
