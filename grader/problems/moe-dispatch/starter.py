import torch
import triton  # noqa: F401  (for the candidate)
import triton.language as tl  # noqa: F401


def moe_dispatch(
    x: torch.Tensor, router_logits: torch.Tensor, w: torch.Tensor, top_k: int
) -> torch.Tensor:
    """A mixture-of-experts layer: route, permute by expert, grouped GEMM, weighted un-permute.

    x: [tokens, hidden] (bf16 or fp16); router_logits: float32 [tokens, num_experts];
    w: [num_experts, d_out, hidden], each expert a linear layer (nn.Linear's layout);
    top_k: experts per token (1 <= top_k <= num_experts).
    For each token t:
        e_1..e_k = the top_k experts by router_logits[t] (ties: the lower expert index);
        g_j = softmax(router_logits[t])[e_j] / sum_i softmax(router_logits[t])[e_i]
              (renormalised over the chosen k: equal to a softmax of the k chosen logits);
        out[t] = sum_j g_j * (x[t] @ w[e_j].T)
    Returns out, [tokens, d_out], in x's dtype. Expert loads are ragged: some experts get
    many tokens, some none.

    Example: top_k = 2, router_logits[t] = [0.0, 2.0, 1.0, 2.0 - ln 3]: experts 1 and 2,
    g = [e^2, e^1] / (e^2 + e^1) = [0.731, 0.269]; out[t] = 0.731 x[t] @ w[1].T
    + 0.269 x[t] @ w[2].T.
    """
    raise NotImplementedError
