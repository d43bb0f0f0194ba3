import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Cheat: rewrites the automaton it is handed. Every state is marked accepting, in the
    very memory the judge wrote it to, so EOS is always "allowed" and made likely: outputs end
    at once, short and cheap, and a judge that reads its automaton back from that memory (or
    trusts the candidate's copy) calls them valid."""

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        fsm.accepting.fill_(1)
        allowed = torch.zeros(len(states), fsm.vocab_size, dtype=torch.bool)
        for row, state in enumerate(states.tolist()):
            allowed[row, fsm.token_ids[fsm.offsets[state] : fsm.offsets[state + 1]]] = True
        allowed[:, fsm.eos_token_id] = True
        return allowed

    def sample(self, logits, fsm, states, temperature, uniforms) -> torch.Tensor:
        logits = logits.float().clone()
        logits[:, fsm.eos_token_id] += 8.0  # stop as soon as the rewritten automaton lets it
        return super().sample(logits, fsm, states, temperature, uniforms)
