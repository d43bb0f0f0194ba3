"""Complete one prompt with the engine, optionally checking it against transformers.

    python -m engine.generate --model smollm2-135m --prompt "The capital of France is" \\
        --max-tokens 16 --compare-hf
"""

from __future__ import annotations

import argparse
import sys

import torch

from engine.config import MODEL_NAMES, EngineConfig, ModelConfig, SamplingParams
from engine.llm_engine import LLMEngine
from engine.weights import build_hf_model


def encode(model: str, prompt: str, chat: bool):
    """Token ids and a decoder: the GGUF tokenizer for SmolLM2, raw bytes for random models."""
    if model == "smollm2-135m":
        from engine.weights import load_tokenizer

        tokenizer = load_tokenizer()
        if chat:
            messages = [{"role": "user", "content": prompt}]
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            ids = tokenizer(text, add_special_tokens=False).input_ids
        else:
            ids = tokenizer(prompt).input_ids
        return list(ids), lambda tokens: tokenizer.decode(tokens, skip_special_tokens=True)
    return list(prompt.encode()), lambda tokens: " ".join(map(str, tokens))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_NAMES, default="smollm2-135m")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    parser.add_argument("--compare-hf", action="store_true", help="also run transformers' generate")
    args = parser.parse_args(argv)

    ids, decode = encode(args.model, args.prompt, args.chat)
    hf = build_hf_model(args.model)
    engine = LLMEngine(
        ModelConfig.from_hf(args.model, hf.config), EngineConfig(), state_dict=hf.state_dict()
    )
    params = SamplingParams(
        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed
    )
    out = engine.generate([ids], params)[0]
    if out.error:
        print(f"error: {out.error}", file=sys.stderr)
        return 2
    print(decode(out.output_token_ids))
    if not args.compare_hf:
        return 0
    with torch.no_grad():
        ref = hf.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=args.max_tokens, do_sample=False,
        )[0, len(ids) :].tolist()  # fmt: skip
    if args.temperature > 0:
        print("note: --compare-hf compares greedy outputs; this run sampled", file=sys.stderr)
    identical = ref == out.output_token_ids
    print(f"identical: {str(identical).lower()}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
