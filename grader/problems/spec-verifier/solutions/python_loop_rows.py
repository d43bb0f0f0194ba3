import torch

from engine.spec_decode import Verifier


class SpecVerifier(Verifier):
    """Correct and slow: the rule row by row and draft by draft in Python, the residual and
    its inverse CDF by loops over the whole vocabulary. The tests accept it; the throughput
    test shows what the loops cost the engine."""

    def verify(self, draft_tokens, draft_probs, target_probs, uniforms):
        batch, k = draft_tokens.shape
        tokens = torch.full((batch, k + 1), -1, dtype=torch.int64)
        num_accepted = torch.zeros(batch, dtype=torch.int64)
        for b in range(batch):
            drafts = draft_tokens[b].tolist()
            u = uniforms[b].tolist()
            n = 0
            while n < k:
                x = drafts[n]
                p_x, q_x = float(target_probs[b, n, x]), float(draft_probs[b, n, x])
                if not u[n] * q_x < p_x:
                    break
                n += 1
            p = target_probs[b, n].double().tolist()
            if n < k:
                q = draft_probs[b, n].double().tolist()
                weights = [max(0.0, a - c) for a, c in zip(p, q, strict=True)]
                if sum(weights) <= 0:
                    weights = p
            else:
                weights = p
            cumulative, total = [], 0.0
            for weight in weights:
                total += weight
                cumulative.append(total)
            goal = u[k] * total
            chosen = len(weights) - 1
            for token, value in enumerate(cumulative):
                if value > goal:
                    chosen = token
                    break
            tokens[b, :n] = torch.tensor(drafts[:n], dtype=torch.int64)
            tokens[b, n] = chosen
            num_accepted[b] = n
        return tokens, num_accepted
