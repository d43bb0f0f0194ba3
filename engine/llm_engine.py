"""The engine: requests in, tokens out, one scheduler step at a time."""

from __future__ import annotations

import time

import torch

from engine.async_scheduling import InFlightStep, launch, resolve
from engine.attention import AttentionBackend, attention_backend
from engine.block_allocator import BlockAllocator
from engine.config import EngineConfig, ModelConfig, SamplingParams
from engine.model_runner import ModelRunner
from engine.outputs import RequestOutput, StepRecord
from engine.prefix_caching_allocator import PrefixCachingAllocator
from engine.rejection_sampler import RejectionSampler
from engine.sampler import Sampler, SamplingBatch
from engine.scheduler import Scheduler
from engine.schedulers import FCFSScheduler, StaticScheduler
from engine.sequence import Sequence, Status
from engine.spec_decode import SpecDecoder, Verifier
from engine.topk_topp_sampler import TopKTopPSampler

__all__ = ["LLMEngine", "RequestOutput", "StepRecord"]


class LLMEngine:
    """Continuous batching over a paged KV cache, with pluggable parts.

    `model` is a model name (`tiny`, `smollm2-135m`, `smollm2-135m-random`, `llama-1b-random`)
    or a `ModelConfig` with `state_dict` from a transformers Llama. Replacement parts:
    `scheduler_cls(allocator, max_num_seqs=..., max_num_batched_tokens=...)`,
    `allocator_cls(num_blocks, block_size, enable_prefix_caching)`, and instances
    `attention`, `sampler`, `verifier`. `static=True` is the static-batching baseline.
    """

    def __init__(
        self,
        model: str | ModelConfig = "tiny",
        config: EngineConfig | None = None,
        *,
        state_dict: dict[str, torch.Tensor] | None = None,
        scheduler_cls: type[Scheduler] | None = None,
        allocator_cls: type[BlockAllocator] = PrefixCachingAllocator,
        attention: AttentionBackend | None = None,
        sampler: Sampler | None = None,
        verifier: Verifier | None = None,
        static: bool = False,
    ):
        config = config or EngineConfig()
        if isinstance(model, str):
            from engine.weights import build_hf_model

            hf = build_hf_model(model)
            model, state_dict = ModelConfig.from_hf(model, hf.config), hf.state_dict()
            del hf
        if state_dict is None:
            raise ValueError("a ModelConfig needs its state_dict")
        self.model_config, self.config = model, config
        attention = attention or attention_backend(config.attention)
        self.runner = ModelRunner(model, config, state_dict, attention)
        self.allocator = allocator_cls(
            self.runner.num_blocks, config.block_size, config.enable_prefix_caching
        )
        scheduler_cls = scheduler_cls or (StaticScheduler if static else FCFSScheduler)
        self.scheduler = scheduler_cls(
            self.allocator,
            max_num_seqs=config.max_num_seqs,
            max_num_batched_tokens=config.max_num_batched_tokens,
        )
        self.sampler = sampler or TopKTopPSampler()
        self.verifier = verifier or RejectionSampler()
        self.spec = None
        if config.num_speculative_tokens:
            self.spec = SpecDecoder(
                self.runner, self.allocator, self.sampler, self.verifier,
                config.num_speculative_tokens, config.draft_layers,
            )  # fmt: skip
        self.trace: list[StepRecord] = []
        self.rejected: list[RequestOutput] = []
        self.in_flight: InFlightStep | None = None
        self.start_time = time.perf_counter()

    def add_request(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams | None = None,
        *,
        request_id: str = "",
        priority: int = 0,
        arrival_time: float | None = None,
    ) -> Sequence:
        """Queue a request and return its sequence. Bad input ends that request at once, with
        `error` set: the next `step` returns it."""
        params = params or SamplingParams()
        now = time.perf_counter() if arrival_time is None else arrival_time
        seq = Sequence(prompt_token_ids, params, priority, now, request_id)
        seq.error = self._check(seq)
        if seq.error:
            seq.finish_reason, seq.status = "error", Status.FINISHED
            self.rejected.append(RequestOutput.of(seq))
        else:
            self.scheduler.add(seq)
        return seq

    def _check(self, seq: Sequence) -> str | None:
        try:
            seq.params.validate()
        except ValueError as exc:
            return str(exc)
        n, max_len = seq.num_prompt_tokens, self.config.max_model_len
        num_blocks, vocab = self.allocator.num_blocks, self.model_config.vocab_size
        if n == 0:
            return "empty prompt"
        if n >= max_len:
            return f"prompt of {n} tokens leaves no room in max_model_len {max_len}"
        if self.allocator.blocks_needed(n + 1) > num_blocks:
            return f"prompt of {n} tokens does not fit in the KV cache's {num_blocks} blocks"
        if any(not isinstance(t, int) or not 0 <= t < vocab for t in seq.prompt_token_ids):
            return f"token ids must be in [0, {vocab})"
        return None

    @property
    def spec_proposed(self) -> int:
        """Draft tokens proposed so far (speculative decoding)."""
        return self.spec.num_proposed if self.spec else 0

    @property
    def spec_accepted(self) -> int:
        """Draft tokens accepted so far (speculative decoding)."""
        return self.spec.num_accepted if self.spec else 0

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished() or bool(self.rejected) or self.in_flight is not None

    def step(self) -> list[RequestOutput]:
        """Schedule, run the model, sample, post-process, record; return what finished.

        With `async_scheduling`, this step's run and sample are launched, then the previous
        step's tokens post-processed while they run (`engine/async_scheduling.py`).
        """
        finished, self.rejected = self.rejected, []
        begin = time.perf_counter()
        plan = self.scheduler.schedule()
        self.runner.copy_blocks(self.allocator.take_copies())
        scheduled = plan.scheduled
        if self.config.async_scheduling:
            launched = launch(self, scheduled) if scheduled else None
            if self.in_flight is not None:
                finished += resolve(self, self.in_flight)
            self.in_flight = launched
        elif scheduled:
            if self.spec:
                scheduled = self.spec.propose(scheduled)
            logits, sampled = self.runner.run(scheduled)
            if self.spec:
                self._advance([(seq, n) for seq, n in scheduled if seq not in sampled])
                new_tokens = self.spec.verify(scheduled, logits, sampled)
            else:
                self._advance(scheduled)
                new_tokens = [[token] for token in self.sample(logits, sampled).tolist()]
            finished += self._post_process(sampled, new_tokens)
        if not scheduled:
            return finished + self._fail_oversized()
        end = time.perf_counter()
        used = self.allocator.num_blocks - self.allocator.num_free_blocks
        ran = [(seq.request_id, n) for seq, n in scheduled]
        preempted = [seq.request_id for seq in plan.preempted]
        duration_ms = (end - begin) * 1e3
        self.trace.append(
            StepRecord(len(self.trace), end - self.start_time, duration_ms, ran, preempted, used)
        )
        return finished

    def _advance(self, scheduled: list[tuple[Sequence, int]]) -> None:
        """The model computed the scheduled tokens: their KV is in the cache."""
        for seq, num_new in scheduled:
            seq.num_computed_tokens += num_new
            self.allocator.cache_full_blocks(seq)

    def sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
        """`[len(seqs)]` int64 tokens on the logits' device, row `i` for `seqs[i]`."""
        if not seqs:
            return torch.empty(0, dtype=torch.int64, device=logits.device)
        return self.sampler.sample(logits, SamplingBatch.of(seqs, logits.device))

    def _post_process(
        self, seqs: list[Sequence], new_tokens: list[list[int]]
    ) -> list[RequestOutput]:
        """Append each sequence's new tokens up to its stop; end the ones that stopped. With
        speculative decoding the new tokens' blocks are cached here, once they are known."""
        finished, now = [], time.perf_counter()
        for seq, tokens in zip(seqs, new_tokens, strict=True):
            for token in tokens:
                seq.token_ids.append(token)
                seq.token_times.append(now)
                if self.stopped(seq, token, len(seq.token_ids)):
                    break
            if self.spec:
                self.allocator.cache_full_blocks(seq)
            if seq.finish_reason:
                finished.append(self.end(seq))
        return finished

    def _fail_oversized(self) -> list[RequestOutput]:
        """With nothing running, a waiting request that still cannot start needs more KV
        blocks than the whole cache has: fail it, not the engine."""
        if self.scheduler.running:
            return []
        failed, num_blocks = [], self.allocator.num_blocks
        for seq in list(self.scheduler.waiting):
            need = self.allocator.blocks_needed(seq.num_tokens + 1)
            if need > num_blocks:
                seq.error = f"request needs {need} KV blocks, the cache has {num_blocks}"
                seq.finish_reason = "error"
                failed.append(self.end(seq))
        return failed

    def stopped(self, seq: Sequence, token: int, num_tokens: int) -> bool:
        """Whether `token`, the sequence's `num_tokens`-th, ends it; sets `finish_reason`."""
        limit = max(seq.params.max_tokens, seq.pad_to_tokens)
        if num_tokens - seq.num_prompt_tokens >= limit or num_tokens >= self.config.max_model_len:
            seq.finish_reason = "length"
        elif token == self.model_config.eos_token_id and not seq.params.ignore_eos:
            seq.finish_reason = "stop"
        return seq.finish_reason is not None

    def end(self, seq: Sequence) -> RequestOutput:
        """Take an ended sequence out of the scheduler, wherever it waits or runs (async: one
        preempted while its last token was pending waits to be recomputed), and report it."""
        self.scheduler.abort(seq)
        return RequestOutput.of(seq)

    def generate(
        self, prompts: list[list[int]], params: SamplingParams | list[SamplingParams] | None = None
    ) -> list[RequestOutput]:
        """Run `prompts` to completion; outputs in the order of `prompts`."""
        params_list = (
            params if isinstance(params, list) else [params or SamplingParams()] * len(prompts)
        )
        seqs = [self.add_request(p, sp) for p, sp in zip(prompts, params_list, strict=True)]
        done: dict[str, RequestOutput] = {}
        while self.has_unfinished():
            for out in self.step():
                done[out.request_id] = out
        return [done[seq.request_id] for seq in seqs]
