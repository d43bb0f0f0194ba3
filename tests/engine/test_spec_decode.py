"""The rejection-sampling verifier: greedy semantics and the target distribution, exactly."""

from __future__ import annotations

import torch

from engine.rejection_sampler import RejectionSampler
from tests.engine.test_sampler import chi_square_critical


def one_hot(ids: list[int], vocab: int = 8) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), vocab).float()


def test_greedy_accepts_the_agreeing_prefix_then_corrects():
    draft = torch.tensor([[3, 5, 1]])
    q = one_hot([3, 5, 1])[None]
    p = one_hot([3, 6, 1, 2])[None]
    tokens, accepted = RejectionSampler().verify(
        draft, q, p, torch.full((1, 4), 0.5, dtype=torch.float64)
    )
    assert accepted.tolist() == [1] and tokens.tolist() == [[3, 6, -1, -1]]


def test_all_accepted_adds_a_bonus_token():
    draft = torch.tensor([[3, 5]])
    tokens, accepted = RejectionSampler().verify(
        draft,
        one_hot([3, 5])[None],
        one_hot([3, 5, 7])[None],
        torch.full((1, 3), 0.9, dtype=torch.float64),
    )
    assert accepted.tolist() == [2] and tokens.tolist() == [[3, 5, 7]]


def test_first_emitted_token_follows_the_target_distribution():
    """Draft from q, verify against p: the first emitted token must be distributed as p."""
    gen = torch.Generator().manual_seed(0)
    vocab, n = 6, 30000
    p = torch.softmax(torch.randn(vocab, generator=gen) * 1.5, 0)
    q = torch.softmax(torch.randn(vocab, generator=gen) * 1.5, 0)
    draft = torch.multinomial(q, n, replacement=True, generator=gen)[:, None]
    target = torch.stack([p, p], 0).expand(n, -1, -1)
    uniforms = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    tokens, _ = RejectionSampler().verify(draft, q.expand(n, 1, -1), target, uniforms)
    counts = torch.bincount(tokens[:, 0], minlength=vocab).double()
    expected = p.double() * n
    assert float(((counts - expected) ** 2 / expected).sum()) < chi_square_critical(vocab - 1)
    draft_counts = torch.bincount(draft[:, 0], minlength=vocab).double()
    assert float(((draft_counts - expected) ** 2 / expected).sum()) > chi_square_critical(vocab - 1)
