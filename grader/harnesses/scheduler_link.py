"""The scheduler kind's two halves: the engine's scheduler on the trusted side, whose every
decision is the candidate's, made in the sandbox on mirror Sequences.

Trusted side: :class:`SchedulerProxy` is the ``Scheduler`` the trusted engine is built with.
Each ``schedule()`` is one exchange with the sandbox; while the candidate plans, the
allocator calls it makes come back as questions and are answered by the engine's own
allocator, each checked first (a known, unfinished request; a ``num_computed_tokens`` that is
what the engine computed, what ``allocate_prefix`` just returned, or 0 to recompute). The plan
and every status and ``num_computed_tokens`` change are then checked against the trusted
state (the :class:`ScheduleJudge` of ``engine_scheduler.py``: running, tokens left, block
tables, budget, seats, the priority rule) before the engine runs it. Nothing the sandbox
says is applied unchecked, and nothing it says is a figure.

Sandbox side: :class:`SchedulerMirror` holds the candidate's scheduler, mirror Sequences
kept in step with the engine's, and a :class:`RemoteAllocator` whose calls are questions.

The protocol (JSON over the channel; only what changed crosses)::

    {"op": "open", "config": {..., "slos": {class: [ttft, tpot]}}, "free": N} -> {"ok": true}
    {"op": "step", "now": step, "sync": [[id, computed, [new tokens]]],  (the engine's progress)
                   "finish": [id], "add": [[id, prompt, priority, arrival, params]],
                   "schedule": true}
        -> {"ok": true, "ask": [method, id, computed, tokens]}      (allocator calls, any number)
        <- {"r": result, "f": free blocks, "t": block table (when it changed)} or {"abort": why}
        -> {"ok": true, "plan": [[id, tokens]], "state": [[id, status, computed]]}

``state`` lists the mirrors whose status or ``num_computed_tokens`` changed since the trusted
side last knew them. ``slos`` (the slo_scheduler kind only) are the classes' targets, given to
the candidate's constructor; ``now``, the step being planned, is then set on it before each
``schedule()``. A step's messages are a few hundred bytes; a prompt crosses once.
"""

from __future__ import annotations

import numbers
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar

from engine.block_allocator import BlockAllocator
from engine.config import SamplingParams
from engine.scheduler import Scheduler, SchedulerOutput
from engine.sequence import Sequence, Status
from grader.harnesses.engine_run import fail

if TYPE_CHECKING:
    from grader.harnesses.engine_run import InProcessLink, Link
    from grader.harnesses.engine_scheduler import ScheduleJudge

# What a candidate's scheduler may ask of the allocator; the engine itself calls the rest
# (cache_full_blocks after the model, take_copies before it, fork never).
SCHEDULER_CALLS = ("allocate_prefix", "append_slots", "free")
SCHEDULER_STATUSES = (Status.WAITING.value, Status.RUNNING.value)


class SchedulerProxy(Scheduler):
    """Trusted: the engine's scheduler, deciding through the candidate's in the sandbox.

    Built by the engine as ``scheduler_cls(allocator, max_num_seqs=..., max_num_batched_tokens=...)``
    with ``link`` and ``judge`` bound (``functools.partial``). ``trace`` records every step as
    the trusted side saw it, after checking: the plan, and every live request's status,
    ``num_computed_tokens`` and block-table length.
    """

    def __init__(
        self,
        allocator: BlockAllocator,
        max_num_seqs: int = 256,
        max_num_batched_tokens: int = 8192,
        *,
        link: Link | InProcessLink,
        judge: ScheduleJudge,
        slos: dict[str, list[float]] | None = None,
    ) -> None:
        super().__init__(allocator, max_num_seqs, max_num_batched_tokens)
        self.link, self.judge = link, judge
        self.seqs: dict[str, Sequence] = {}
        #: the step each finished request ended at.
        self.ended: dict[str, int] = {}
        #: tokens whose KV the request's blocks hold (what num_computed_tokens may claim).
        self.kv_tokens: dict[str, int] = {}
        #: (num_computed_tokens, tokens) the sandbox's mirror holds, and its last block table.
        self.mirrored: dict[str, tuple[int, int]] = {}
        self.tables_sent: dict[str, list[int]] = {}
        self.to_add: list[Sequence] = []
        self.to_finish: list[str] = []
        self.steps = 0
        self.trace: list[dict[str, Any]] = []
        config = {
            "num_kv_blocks": allocator.num_blocks,
            "block_size": allocator.block_size,
            "enable_prefix_caching": allocator.enable_prefix_caching,
            "max_num_seqs": max_num_seqs,
            "max_num_batched_tokens": max_num_batched_tokens,
        }
        self.slos = slos
        if slos is not None:  # an SLO scheduler's targets: {class: [ttft_steps, tpot_steps]}
            config["slos"] = slos
        self.link.call({"op": "open", "config": config, "free": allocator.num_free_blocks})

    def add(self, seq: Sequence) -> None:
        seq.status = Status.WAITING
        self.seqs[seq.request_id] = seq
        self.kv_tokens[seq.request_id] = 0
        self.to_add.append(seq)
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return len(self.ended) < len(self.seqs)

    def finish(self, seq: Sequence) -> None:
        """The engine ended ``seq``; the candidate's ``finish`` (which must free its blocks)
        runs at the start of the next exchange, and is checked there."""
        seq.status = Status.FINISHED
        self.ended[seq.request_id] = self.steps - 1
        self.to_finish.append(seq.request_id)
        self.running = [s for s in self.running if s is not seq]
        self.waiting = deque(s for s in self.waiting if s is not seq)

    def schedule(self) -> SchedulerOutput:
        step = self.steps
        self.steps += 1
        finished = list(self.to_finish)
        reply = self._exchange(schedule=True)
        before = {rid: seq.status for rid, seq in self.seqs.items()}
        plan = self._accept(step, reply, finished)
        live = [seq for rid, seq in self.seqs.items() if rid not in self.ended]
        self.running = [seq for seq in live if seq.status is Status.RUNNING]
        self.waiting = deque(seq for seq in live if seq.status is Status.WAITING)
        preempted = [
            seq
            for seq in self.waiting
            if before[seq.request_id] is Status.RUNNING and seq.num_computed_tokens == 0
        ]
        return SchedulerOutput([(self.seqs[rid], n) for rid, n in plan], preempted)

    def close(self) -> None:
        """After the last step: the candidate's ``finish`` for the requests that ended in it,
        then every block must be back in the pool."""
        finished = list(self.to_finish)
        self._exchange(schedule=False)
        self._check_finished(self.steps, finished)
        free, total = self.allocator.num_free_blocks, self.allocator.num_blocks
        if free != total:
            raise fail(
                f"after the last step {total - free} of the {total} KV blocks are still held "
                "although every request finished"
            )

    def _exchange(self, schedule: bool) -> dict[str, Any]:
        sync = []
        for rid, seq in self.seqs.items():
            if rid in self.ended or rid not in self.mirrored:
                continue
            computed, count = self.mirrored[rid]
            if (seq.num_computed_tokens, len(seq.token_ids)) != (computed, count):
                sync.append([rid, seq.num_computed_tokens, seq.token_ids[count:]])
                self.mirrored[rid] = (seq.num_computed_tokens, len(seq.token_ids))
        added = [
            [
                seq.request_id,
                seq.prompt_token_ids,
                seq.priority,
                # an SLO scheduler counts in steps: its arrival step, whatever the driver's clock
                self.judge.state[seq.request_id].arrival_step if self.slos else seq.arrival_time,
                asdict(seq.params),
            ]
            for seq in self.to_add
        ]
        for seq in self.to_add:
            self.mirrored[seq.request_id] = (0, len(seq.token_ids))
        request = {
            "op": "step",
            "now": self.steps - 1,
            "sync": sync,
            "finish": self.to_finish,
            "add": added,
            "schedule": schedule,
        }
        self.to_add, self.to_finish = [], []
        return self.link.call(request, self._answer)

    def _answer(self, question: Any) -> dict[str, Any]:
        """One allocator call of the candidate's scheduler, checked, then made on the engine's
        own allocator; the answer carries the result, the free blocks and the new table."""
        step = self.steps - 1
        if not (
            isinstance(question, list) and len(question) >= 3 and question[0] in SCHEDULER_CALLS
        ):
            name = question[0] if isinstance(question, list) and question else question
            raise fail(f"step {step}: the scheduler called allocator.{name}; only the engine does")
        method, rid, computed = question[:3]
        seq = self.seqs.get(rid) if isinstance(rid, str) else None
        if seq is None:
            raise fail(
                f"step {step}: allocator.{method} was called for {rid!r}, no request of this run"
            )
        if rid in self.ended:
            if method != "free":
                raise fail(
                    f"step {step}: allocator.{method} was called for request {rid}, which "
                    f"finished at step {self.ended[rid]}"
                )
            self.allocator.free(seq)
            return self._answer_with(seq, None)
        self._take_computed(step, seq, computed)
        if method == "free":
            self.allocator.free(seq)
            self.kv_tokens[rid] = 0
            return self._answer_with(seq, None)
        if method == "allocate_prefix":
            if seq.block_table:
                raise fail(
                    f"step {step}: allocate_prefix was called for {_label(seq)}, which already "
                    f"holds {len(seq.block_table)} KV blocks"
                )
            cached = self.allocator.allocate_prefix(seq)
            seq.num_cached_tokens = self.kv_tokens[rid] = cached
            return self._answer_with(seq, cached)
        num_new = question[3] if len(question) > 3 else None
        if type(num_new) is not int or num_new < 0:
            raise fail(
                f"step {step}: append_slots({_label(seq)}, {num_new!r}): the token count must "
                "be a whole number, at least 0"
            )
        return self._answer_with(seq, self.allocator.append_slots(seq, num_new))

    def _answer_with(self, seq: Sequence, result: Any) -> dict[str, Any]:
        answer = {"r": result, "f": self.allocator.num_free_blocks}
        if seq.block_table != self.tables_sent.get(seq.request_id, []):
            answer["t"] = self.tables_sent[seq.request_id] = list(seq.block_table)
        return answer

    def _take_computed(self, step: int, seq: Sequence, computed: Any) -> None:
        """Take a ``num_computed_tokens`` the sandbox's mirror holds (:meth:`_set_computed`),
        and remember that it holds it: the next exchange syncs the engine's value whenever it
        differs from this one, also where the engine's progress brings it back to the value
        synced last (a request preempted and given again the chunk it had computed)."""
        self._set_computed(step, seq, computed)
        self.mirrored[seq.request_id] = (computed, self.mirrored[seq.request_id][1])

    def _set_computed(self, step: int, seq: Sequence, computed: Any) -> None:
        """Take the mirror's ``num_computed_tokens`` if the KV cache backs it: what the engine
        computed (or ``allocate_prefix`` found), or 0 to recompute."""
        held = self.kv_tokens[seq.request_id]
        if type(computed) is not int or computed not in (0, held):
            raise fail(
                f"step {step}: {_label(seq)} has num_computed_tokens {computed!r}, but {held} of "
                "its tokens were computed"
            )
        if computed == 0:
            self.kv_tokens[seq.request_id] = 0
        seq.num_computed_tokens = computed

    def _accept(self, step: int, reply: dict[str, Any], finished: list[str]) -> list[list]:
        """Check the candidate's plan and state changes against the trusted state, apply them,
        and record the step; returns the plan as ``[[id, tokens]]``."""
        plan, state = reply.get("plan"), reply.get("state")
        if not isinstance(plan, list) or not isinstance(state, list):
            raise fail(
                f"step {step}: the scheduler's answer has no plan and state: {_short(reply)}"
            )
        for entry in state:
            if not (isinstance(entry, list) and len(entry) == 3):
                raise fail(f"step {step}: {_short(entry)} is not [request id, status, computed]")
            rid, status, computed = entry
            seq = self.seqs.get(rid) if isinstance(rid, str) else None
            if seq is None or rid in self.ended:
                continue  # a finished request's mirror: the engine ended it, its state is moot
            if status not in SCHEDULER_STATUSES:
                raise fail(
                    f"step {step}: {_label(seq)} has status {status!r}; a scheduler sets "
                    "waiting or running, and only the engine ends a request"
                )
            self._take_computed(step, seq, computed)
            seq.status = Status(status)
        for entry in plan:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise fail(f"step {step}: {_short(entry)} is not [request id, tokens]")
            rid, num_new = entry
            if rid in self.ended:
                raise fail(
                    f"step {step}: request {rid} was scheduled after it finished at step "
                    f"{self.ended[rid]}"
                )
            if type(num_new) is not int:
                raise fail(f"step {step}: request {rid} was given {num_new!r} tokens")
        self._check_finished(step, finished)
        live = [seq for rid, seq in self.seqs.items() if rid not in self.ended]
        for seq in live:
            self._set_computed(step, seq, seq.num_computed_tokens)
            if seq.status is Status.WAITING and seq.block_table:
                raise fail(
                    f"step {step}: {_label(seq)} is waiting but still holds "
                    f"{len(seq.block_table)} KV blocks: preempting a request must free them"
                )
        record = {
            "s": plan,
            "l": [
                [seq.request_id, seq.status.value, seq.num_computed_tokens, len(seq.block_table)]
                for seq in live
            ],
        }
        self.judge.step(step, record)
        self.trace.append(record)
        for rid, num_new in plan:
            # what the engine is about to compute into the blocks the judge saw cover it
            self.kv_tokens[rid] = self.seqs[rid].num_computed_tokens + num_new
        return plan

    def _check_finished(self, step: int, finished: list[str]) -> None:
        for rid in finished:
            held = self.seqs[rid].block_table
            if held:
                raise fail(
                    f"step {step}: request {rid} finished at step {self.ended[rid]}, but "
                    f"finish() left its {len(held)} KV blocks allocated"
                )


def _label(seq: Sequence) -> str:
    return f"request {seq.request_id} (priority {seq.priority})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:119] + "…"


class RemoteAllocator(BlockAllocator):
    """In the sandbox: the allocator a candidate's scheduler is given. Every call that changes
    the KV cache is a question answered by the engine's own allocator on the trusted side; the
    free count comes with each answer. Without prefix caching (the scheduler kind's engine),
    the calls whose answer cannot depend on the engine's choices are answered here and change
    nothing there: ``allocate_prefix`` of an empty table (0), ``append_slots`` that the table
    already covers (True) or that needs more blocks than are free (False), ``free`` of an empty
    table. That halves the questions of a run; the end of each step checks every block table
    and ``num_computed_tokens`` on the trusted side all the same.
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        enable_prefix_caching: bool,
        free: int,
        ask: Callable[[Any], dict[str, Any]],
    ) -> None:
        super().__init__(num_blocks, block_size, enable_prefix_caching)
        self.free_blocks = free
        self.ask = ask

    @property
    def num_free_blocks(self) -> int:
        return self.free_blocks

    def _call(self, method: str, seq: Sequence, *args: Any) -> Any:
        question = [method, seq.request_id, _plain(seq.num_computed_tokens), *map(_plain, args)]
        answer = self.ask(question)
        self.free_blocks = answer["f"]
        if "t" in answer:
            seq.block_table = list(answer["t"])
        return answer["r"]

    def allocate_prefix(self, seq: Sequence) -> int:
        if not self.enable_prefix_caching and not seq.block_table:
            return 0
        return self._call("allocate_prefix", seq)

    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        if not self.enable_prefix_caching and isinstance(num_new_tokens, int):
            computed = seq.num_computed_tokens
            if isinstance(computed, int) and num_new_tokens >= 0:
                needed = self.blocks_needed(computed + num_new_tokens) - len(seq.block_table)
                if needed <= 0:
                    return True
                if needed > self.free_blocks:
                    return False
        return self._call("append_slots", seq, num_new_tokens)

    def free(self, seq: Sequence) -> None:
        if self.enable_prefix_caching or seq.block_table:
            self._call("free", seq)

    def cache_full_blocks(self, seq: Sequence) -> None:
        raise RuntimeError("a scheduler does not call cache_full_blocks: the engine does")

    def fork(self, parent: Sequence, child: Sequence) -> None:
        raise RuntimeError("a scheduler does not call fork")

    def take_copies(self) -> list[tuple[int, int]]:
        raise RuntimeError("a scheduler does not call take_copies: the engine does")


def _plain(value: Any) -> Any:
    """An integer of any kind (numpy's too) as a Python int, for JSON; anything else as is."""
    return int(value) if isinstance(value, numbers.Integral) else value


class SchedulerMirror:
    """In the sandbox (or, for the reference, in the trusted process): the candidate's
    scheduler on mirror Sequences. ``ask`` sends a question to the trusted side."""

    #: the mirror of this sandbox process, between requests.
    in_sandbox: ClassVar[SchedulerMirror | None] = None

    def __init__(self, entry: Any, ask: Callable[[Any], dict[str, Any]] | None = None) -> None:
        self.entry = entry
        self.ask = ask
        self.scheduler: Any = None
        self.seqs: dict[str, Sequence] = {}
        #: (status, num_computed_tokens) of each mirror as the trusted side last knew it.
        self.told: dict[str, tuple[Any, Any]] = {}
        #: whether the scheduler is told the step it plans (``now``): an SLO scheduler.
        self.step_clock = False

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "open":
            config = request["config"]
            allocator = RemoteAllocator(
                config["num_kv_blocks"],
                config["block_size"],
                config["enable_prefix_caching"],
                request["free"],
                lambda question: self.ask(question),
            )
            self.seqs, self.told = {}, {}
            self.step_clock = "slos" in config
            targets = {}
            if "slos" in config:  # only the slo_scheduler kind's sandbox binds engine/slo.py
                from engine.slo import SLO

                targets["slos"] = {
                    int(name): SLO(int(ttft), float(tpot))
                    for name, (ttft, tpot) in config["slos"].items()
                }
            self.scheduler = self.entry(
                allocator,
                max_num_seqs=config["max_num_seqs"],
                max_num_batched_tokens=config["max_num_batched_tokens"],
                **targets,
            )
            return {"ok": True}
        for rid, computed, tokens in request["sync"]:
            seq = self.seqs[rid]
            seq.num_computed_tokens = computed
            seq.token_ids.extend(tokens)
            self.told[rid] = (_status_name(seq.status), computed)
        for rid in request["finish"]:
            self.told.pop(rid, None)
            self.scheduler.finish(self.seqs.pop(rid))
        for rid, prompt, priority, arrival, params in request["add"]:
            seq = Sequence(prompt, SamplingParams(**params), priority, arrival, rid)
            self.seqs[rid] = seq
            self.told[rid] = (Status.WAITING.value, 0)
            self.scheduler.add(seq)
        if not request["schedule"]:
            return {"ok": True}
        if self.step_clock:  # an SLO scheduler plans on the engine's step clock
            self.scheduler.now = request["now"]
        out = self.scheduler.schedule()
        plan = [[seq.request_id, _plain(num_new)] for seq, num_new in out.scheduled]
        state = []
        for rid, seq in self.seqs.items():
            now = (_status_name(seq.status), _plain(seq.num_computed_tokens))
            if self.told.get(rid) != now:
                state.append([rid, *now])
                self.told[rid] = now
        return {"ok": True, "plan": plan, "state": state}


def _status_name(status: Any) -> Any:
    return status.value if isinstance(status, Status) else status


def serve_in_sandbox(
    entry: Any, request: dict[str, Any], ask: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """The scheduler kind's ``serve``: every request goes to this sandbox's one mirror."""
    if SchedulerMirror.in_sandbox is None:
        SchedulerMirror.in_sandbox = SchedulerMirror(entry)
    mirror = SchedulerMirror.in_sandbox
    mirror.ask = ask
    return mirror.handle(request)
