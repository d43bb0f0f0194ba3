"""The engine: requests in, tokens out, one scheduler step at a time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from engine.attention import AttentionBackend, TorchAttention
from engine.block_allocator import BlockAllocator
from engine.config import EngineConfig, ModelConfig, SamplingParams
from engine.model_runner import ModelRunner
from engine.prefix_caching_allocator import PrefixCachingAllocator
from engine.rejection_sampler import RejectionSampler
from engine.sampler import Sampler, SamplingBatch
from engine.scheduler import Scheduler
from engine.schedulers import FCFSScheduler, StaticScheduler
from engine.sequence import Sequence, Status
from engine.spec_decode import Verifier
from engine.topk_topp_sampler import TopKTopPSampler


@dataclass
class RequestOutput:
    """A finished request: its tokens, why it stopped (or its error), and its timings."""

    request_id: str
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    finish_reason: str | None
    error: str | None = None
    arrival_time: float = 0.0
    token_times: list[float] = field(default_factory=list)
    num_preemptions: int = 0
    num_cached_tokens: int = 0
    priority: int = 0


@dataclass
class InFlightStep:
    """A launched async step: its sampled tokens (on the device, and being copied to the
    host) and, per sampled sequence, where its placeholder sits in `token_ids`."""

    tokens: torch.Tensor
    host_tokens: torch.Tensor
    done: torch.cuda.Event | None
    placed: list[tuple[Sequence, int]]
    unsampled: list[Sequence]  # scheduled for a prompt chunk that samples nothing


@dataclass
class StepRecord:
    """One line of the per-step trace."""

    step: int
    time_s: float
    duration_ms: float
    scheduled: list[tuple[str, int]]
    preempted: list[str]
    kv_blocks_used: int


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
            model = ModelConfig.from_hf(model, hf.config)
            state_dict = hf.state_dict()
            del hf
        if state_dict is None:
            raise ValueError("a ModelConfig needs its state_dict")
        self.model_config, self.config = model, config
        if attention is None:
            if config.attention == "triton":
                from engine.triton_attention import TritonAttention

                attention = TritonAttention()
            else:
                attention = TorchAttention()
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
        self.trace: list[StepRecord] = []
        self.rejected: list[RequestOutput] = []
        self.spec_proposed = self.spec_accepted = 0
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
    ) -> str:
        """Queue a request. Bad input finishes that request at once with `error` set."""
        params = params or SamplingParams()
        now = time.perf_counter() if arrival_time is None else arrival_time
        seq = Sequence(prompt_token_ids, params, priority, now, request_id)
        error = self._check(seq)
        if error:
            seq.error, seq.finish_reason = error, "error"
            self.rejected.append(self._output(seq))
        else:
            self.scheduler.add(seq)
        return seq.request_id

    def _check(self, seq: Sequence) -> str | None:
        try:
            seq.params.validate()
        except ValueError as exc:
            return str(exc)
        n = seq.num_prompt_tokens
        if n == 0:
            return "empty prompt"
        if n >= self.config.max_model_len:
            return (
                f"prompt of {n} tokens leaves no room in max_model_len {self.config.max_model_len}"
            )
        if self.allocator.blocks_needed(n + 1) > self.allocator.num_blocks:
            return f"prompt of {n} tokens does not fit in the KV cache's {self.allocator.num_blocks} blocks"
        vocab = self.model_config.vocab_size
        if any(not isinstance(t, int) or not 0 <= t < vocab for t in seq.prompt_token_ids):
            return f"token ids must be in [0, {self.model_config.vocab_size})"
        return None

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished() or bool(self.rejected) or self.in_flight is not None

    def step(self) -> list[RequestOutput]:
        """Schedule, run the model, sample, and return the requests that finished."""
        if self.config.async_scheduling:
            return self._step_async()
        finished, self.rejected = self.rejected, []
        begin = time.perf_counter()
        plan = self.scheduler.schedule()
        self.runner.copy_blocks(self.allocator.take_copies())
        if not plan.scheduled:
            return finished + self._fail_oversized()
        scheduled = plan.scheduled
        if self.config.num_speculative_tokens:
            scheduled, drafts = self._propose(scheduled)
        logits, sample_seqs = self.runner.run(scheduled)
        if self.config.num_speculative_tokens:
            self._verify(scheduled, logits, sample_seqs, drafts, finished)
            sample_seqs = []
        else:
            for seq, num_new in scheduled:
                seq.num_computed_tokens += num_new
                self.allocator.cache_full_blocks(seq)
        if sample_seqs:
            batch = SamplingBatch.build(
                [s.params for s in sample_seqs],
                [s.rng.random() for s in sample_seqs],
                logits.device,
            )
            tokens = self.sampler.sample(logits, batch).tolist()
            now = time.perf_counter()
            for seq, token in zip(sample_seqs, tokens, strict=True):
                self._append(seq, token, now)
                if seq.finish_reason:
                    self.scheduler.finish(seq)
                    finished.append(self._output(seq))
        end = time.perf_counter()
        self.trace.append(
            StepRecord(
                step=len(self.trace),
                time_s=end - self.start_time,
                duration_ms=(end - begin) * 1e3,
                scheduled=[(s.request_id, n) for s, n in scheduled],
                preempted=[s.request_id for s in plan.preempted],
                kv_blocks_used=self.allocator.num_blocks - self.allocator.num_free_blocks,
            )
        )
        return finished

    def _step_async(self) -> list[RequestOutput]:
        """Launch this step, then wait for the previous one: the host schedules and prepares
        step N+1 while the GPU runs step N. Each sampled sequence gets a placeholder token at
        once, so the scheduler can give it its next decode token before the real one is known.
        """
        finished, self.rejected = self.rejected, []
        begin = time.perf_counter()
        plan = self.scheduler.schedule()
        self.runner.copy_blocks(self.allocator.take_copies())
        launched = self._launch(plan.scheduled) if plan.scheduled else None
        if self.in_flight is not None:
            finished += self._resolve(self.in_flight)
        self.in_flight = launched
        if launched is None and self.in_flight is None:
            return finished + self._fail_oversized()
        end = time.perf_counter()
        if plan.scheduled:
            self.trace.append(
                StepRecord(
                    step=len(self.trace),
                    time_s=end - self.start_time,
                    duration_ms=(end - begin) * 1e3,
                    scheduled=[(s.request_id, n) for s, n in plan.scheduled],
                    preempted=[s.request_id for s in plan.preempted],
                    kv_blocks_used=self.allocator.num_blocks - self.allocator.num_free_blocks,
                )
            )
        return finished

    def _launch(self, scheduled: list[tuple[Sequence, int]]) -> InFlightStep:
        previous = self.in_flight.tokens if self.in_flight is not None else None
        logits, sample_seqs = self.runner.run(scheduled, placeholders=previous)
        for seq, num_new in scheduled:
            seq.num_computed_tokens += num_new
        placed = []
        if sample_seqs:
            batch = SamplingBatch.build(
                [s.params for s in sample_seqs],
                [s.rng.random() for s in sample_seqs],
                logits.device,
            )
            tokens = self.sampler.sample(logits, batch)
            for row, seq in enumerate(sample_seqs):
                placed.append((seq, len(seq.token_ids)))
                seq.token_ids.append(-1 - row)
        else:
            tokens = torch.empty(0, dtype=torch.int64, device=logits.device)
        done = None
        if tokens.is_cuda:
            host_tokens = torch.empty(tokens.shape, dtype=tokens.dtype, pin_memory=True)
            host_tokens.copy_(tokens, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
        else:
            host_tokens = tokens
        if len(sample_seqs) == len(scheduled):
            unsampled = []
        else:
            sampled = {id(seq) for seq in sample_seqs}
            unsampled = [seq for seq, _ in scheduled if id(seq) not in sampled]
        return InFlightStep(tokens, host_tokens, done, placed, unsampled)

    def _resolve(self, step: InFlightStep) -> list[RequestOutput]:
        """Wait for a launched step; put its real tokens in place of the placeholders, then
        finish the sequences that stopped (dropping the token they computed since)."""
        if step.done is not None:
            step.done.synchronize()
        tokens, now = step.host_tokens.tolist(), time.perf_counter()
        finished = []
        for seq, index in step.placed:
            if seq.status is Status.FINISHED:
                continue
            token = seq.token_ids[index] = tokens[-1 - seq.token_ids[index]]
            self.allocator.cache_full_blocks(seq)
            seq.token_times.append(now)
            self._check_stop(seq, token, index + 1)
            if seq.finish_reason:
                del seq.token_ids[index + 1 :]
                # Preempted while its last token was pending: it waits to be recomputed.
                if seq.status is Status.WAITING and seq in self.scheduler.waiting:
                    self.scheduler.waiting.remove(seq)
                self.scheduler.finish(seq)
                finished.append(self._output(seq))
        for seq in step.unsampled:
            if seq.status is not Status.FINISHED:
                self.allocator.cache_full_blocks(seq)
        return finished

    def _propose(self, scheduled):
        """Speculative decoding, draft side: for each decoding sequence that can get the slots,
        the draft model (the target's first `draft_layers` layers, sharing their KV cache)
        proposes `k` tokens one at a time; the sequence is then scheduled for `1 + k` tokens,
        its last token plus the drafts, all verified in one target pass."""
        k = self.config.num_speculative_tokens
        decoding = [
            seq for seq, n in scheduled
            if n == 1 and seq.num_computed_tokens == len(seq.token_ids) - 1
            and self.allocator.append_slots(seq, 1 + k)
        ]  # fmt: skip
        drafts: dict[int, list[torch.Tensor]] = {seq.seq_id: [] for seq in decoding}
        for step in range(k):
            if not decoding:
                break
            for seq in decoding:
                seq.num_computed_tokens = len(seq.token_ids) - 1 + step
            logits, _ = self.runner.run([(seq, 1) for seq in decoding], self.config.draft_layers)
            batch = SamplingBatch.build(
                [s.params for s in decoding], [s.rng.random() for s in decoding], logits.device
            )
            probs = self.sampler.probs(logits, batch)
            tokens = self.sampler.sample(logits, batch).tolist()
            for row, (seq, token) in enumerate(zip(decoding, tokens, strict=True)):
                seq.spec_token_ids.append(token)
                drafts[seq.seq_id].append(probs[row])
        for seq in decoding:
            seq.num_computed_tokens = len(seq.token_ids) - 1
        return [(seq, 1 + len(seq.spec_token_ids)) for seq, _ in scheduled], drafts

    def _verify(self, scheduled, logits, sample_seqs, drafts, finished) -> None:
        """Speculative decoding, target side: accept drafts by rejection sampling, keep the
        KV of the accepted ones, and append accepted tokens plus one more."""
        row, now = 0, time.perf_counter()
        by_id = {seq.seq_id: n for seq, n in scheduled}
        for seq, num_new in scheduled:
            if seq not in sample_seqs:
                seq.num_computed_tokens += num_new
                self.allocator.cache_full_blocks(seq)
        for seq in sample_seqs:
            k = len(seq.spec_token_ids)
            rows = logits[row : row + min(by_id[seq.seq_id], 1 + k)]
            row += rows.shape[0]
            batch = SamplingBatch.build(
                [seq.params] * rows.shape[0], [0.0] * rows.shape[0], logits.device
            )
            target = self.sampler.probs(rows, batch)
            if k:
                uniforms = torch.tensor(
                    [[seq.rng.random() for _ in range(k + 1)]], dtype=torch.float64
                )
                tokens, accepted = self.verifier.verify(
                    torch.tensor([seq.spec_token_ids], device=logits.device),
                    torch.stack(drafts[seq.seq_id])[None],
                    target[None],
                    uniforms.to(logits.device),
                )
                new_tokens = tokens[0, : int(accepted[0]) + 1].tolist()
                self.spec_proposed += k
                self.spec_accepted += int(accepted[0])
            else:
                single = SamplingBatch.build([seq.params], [seq.rng.random()], logits.device)
                new_tokens = self.sampler.sample(rows, single).tolist()
            seq.num_computed_tokens += by_id[seq.seq_id] - k + len(new_tokens) - 1
            seq.spec_token_ids = []
            for token in new_tokens:
                self._append(seq, token, now)
                if seq.finish_reason:
                    break
            self.allocator.cache_full_blocks(seq)
            if seq.finish_reason:
                self.scheduler.finish(seq)
                finished.append(self._output(seq))

    def _fail_oversized(self) -> list[RequestOutput]:
        """With nothing running, a waiting request that still cannot start needs more KV
        blocks than the whole cache has: fail it, not the engine."""
        if self.scheduler.running:
            return []
        failed = []
        for seq in list(self.scheduler.waiting):
            need = self.allocator.blocks_needed(seq.num_tokens + 1)
            if need > self.allocator.num_blocks:
                self.scheduler.waiting.remove(seq)
                seq.error = (
                    f"request needs {need} KV blocks, the cache has {self.allocator.num_blocks}"
                )
                seq.finish_reason = "error"
                self.scheduler.finish(seq)
                failed.append(self._output(seq))
        return failed

    def _append(self, seq: Sequence, token: int, now: float) -> None:
        seq.token_ids.append(token)
        seq.token_times.append(now)
        self._check_stop(seq, token, len(seq.token_ids))

    def _check_stop(self, seq: Sequence, token: int, num_tokens: int) -> None:
        """Set `finish_reason` if `token`, the sequence's `num_tokens`-th, ends it."""
        limit = max(seq.params.max_tokens, seq.pad_to_tokens)
        if num_tokens - seq.num_prompt_tokens >= limit or num_tokens >= self.config.max_model_len:
            seq.finish_reason = "length"
        elif token == self.model_config.eos_token_id and not seq.params.ignore_eos:
            seq.finish_reason = "stop"

    def _output(self, seq: Sequence) -> RequestOutput:
        keep = seq.params.max_tokens
        return RequestOutput(
            request_id=seq.request_id,
            prompt_token_ids=seq.prompt_token_ids,
            output_token_ids=seq.output_token_ids[:keep],
            finish_reason=seq.finish_reason,
            error=seq.error,
            arrival_time=seq.arrival_time,
            token_times=seq.token_times[:keep],
            num_preemptions=seq.num_preemptions,
            num_cached_tokens=seq.num_cached_tokens,
            priority=seq.priority,
        )

    def generate(
        self, prompts: list[list[int]], params: SamplingParams | list[SamplingParams] | None = None
    ) -> list[RequestOutput]:
        """Run `prompts` to completion; outputs in the order of `prompts`."""
        params_list = (
            params if isinstance(params, list) else [params or SamplingParams()] * len(prompts)
        )
        ids = [self.add_request(p, sp) for p, sp in zip(prompts, params_list, strict=True)]
        done: dict[str, RequestOutput] = {}
        while self.has_unfinished():
            for out in self.step():
                done[out.request_id] = out
        return [done[i] for i in ids]
