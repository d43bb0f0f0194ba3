"""The ``allocator`` kind: the candidate's ``BlockAllocator`` against a model of the rules.

Every call runs on the trusted side first: an :class:`~grader.harnesses.allocator_link.AllocatorProxy`
is the allocator of the trusted engine (or of an op script's driver, here); it forwards each
call to the candidate's allocator in the sandbox (on mirror Sequences kept in step with the
trusted ones), and checks each answer (block table, prefix tokens, free count, copies) on the
:class:`CacheModel`, the trusted model of what every KV slot holds, before anyone uses it.

An *op script* (generated on the trusted side from the secret seed) drives the allocator the
way the engine does, one op at a time: ``new`` (a sequence arrives: ``allocate_prefix``),
``advance`` (the scheduler gives it ``min(chunk, tokens left)`` tokens: ``append_slots``,
``take_copies``, then the model "writes" them, ``num_computed_tokens`` moves,
``cache_full_blocks``, and a sampled token is appended when the sequence caught up), ``fork``
and ``free``. Prompts share prefixes with live sequences and forks share partial blocks, so
prefix hits and copy-on-write happen. After every call the model checks:

* tables: valid, distinct block ids; ``append_slots`` covers exactly the tokens asked, keeps
  the old blocks, hands out only blocks no live sequence holds, and is all or nothing (False
  only when too few blocks are free, and then nothing changed);
* copy-on-write: the block a sequence is about to write into is copied first when it is
  shared, and the copy is queued; no write ever changes a token another live sequence reads;
* prefix hits: what ``allocate_prefix`` returns holds exactly the sequence's tokens, never the
  last token, and at least the longest prefix that live sequences hold in registered blocks;
* counts: ``num_free_blocks`` equals the pool minus the blocks live sequences hold; after
  every sequence is freed, every block is free (a leak is named with its size).

Then the trusted engine serves a shared-prefix workload with the candidate's allocator behind
the proxy and a pool small enough to preempt; its greedy tokens must equal the engine's own.
A ``capacity`` test admits sequences with one shared prompt until the pool is full and
reports how many fit, next to the reference's count on the same pool. The policy score is
:func:`policy_merit`; a timed call serves the benchmark workload, timed by the trusted clock
around the candidate's answers.
"""

from __future__ import annotations

import functools
import math
import mmap
import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import clock_ns
from grader.harnesses.contract import CallTiming, PolicyScore
from grader.harnesses.engine_run import (
    ENGINE_DATA_TYPES,
    VOCAB_SIZE,
    CaseResult,
    InProcessLink,
    Link,
    PolicyHarness,
    drive,
    expected_tokens,
    fail,
    memoized_by_value,
    one_thread,
    outputs_mismatch,
    random_workload,
    reference_class,
    run_reference,
    serial_bound,
    throughput_case,
    throughput_message,
    throughput_run,
    throughput_target,
    tiny_engine,
)
from grader.harnesses.registry import register

if TYPE_CHECKING:
    from engine.block_allocator import BlockAllocator
    from grader.sandbox import SandboxSession

# A run's picture on the results page: KV blocks in use at this many points at most (a long
# script puts several ops in a point): about 2 KB of JSON per test.
PICTURE_POINTS = 200


def run_script(
    allocator: BlockAllocator, script: list[list], usage: list[tuple[int, int]] | None = None
) -> list[bool]:
    """Drive ``allocator`` through an op script the way the engine would, on the trusted side;
    returns whether each ``advance`` got its slots. ``usage``, when given, receives (blocks in
    use, blocks shared by several sequences) after every op, as the trusted model counts them
    (``allocator`` is then an :class:`~grader.harnesses.allocator_link.AllocatorProxy`)."""
    from engine.sequence import Sequence

    seqs: dict[int, Sequence] = {}
    advanced: list[bool] = []
    for index, op in enumerate(script):
        kind = op[0]
        allocator.where = f"op {index} ({kind} {op[1]})"
        if kind == "new":
            seq = seqs[op[1]] = Sequence(op[2], request_id=str(op[1]))
            seq.num_computed_tokens = seq.num_cached_tokens = allocator.allocate_prefix(seq)
        elif kind == "advance":
            seq = seqs[op[1]]
            num_new = min(op[2], seq.num_tokens - seq.num_computed_tokens)
            ok = allocator.append_slots(seq, num_new)
            allocator.take_copies()
            if ok:
                seq.num_computed_tokens += num_new
                allocator.cache_full_blocks(seq)
                if seq.num_computed_tokens == seq.num_tokens:
                    seq.token_ids.append(op[3])
            advanced.append(ok)
        elif kind == "fork":
            parent = seqs[op[1]]
            child = seqs[op[2]] = Sequence(parent.prompt_token_ids, request_id=str(op[2]))
            child.token_ids = list(parent.token_ids)
            allocator.fork(parent, child)
        else:
            allocator.free(seqs.pop(op[1]))
        if usage is not None:
            usage.append(allocator.model.usage())
    allocator.flush()
    return advanced


def make_script(case: dict[str, Any], rng: random.Random) -> list[list]:
    """A seeded op script: arrivals sharing prefixes, chunked prefills, decodes, forks, frees.

    The script frees the oldest sequence when the planned use reaches ``overcommit`` times the
    pool (above 1, ``append_slots`` often finds too few free blocks: the ``advance`` fails and
    the sequence tries again later). It ends by freeing every live sequence.
    """
    block_size, num_blocks = int(case["block_size"]), int(case["num_blocks"])
    script: list[list] = []
    live: dict[int, list[int]] = {}  # sid -> the tokens the plan expects it to hold
    computed: dict[int, int] = {}  # sid -> the tokens the plan expects in its cache
    next_sid = 0
    low, high = case.get("prompt", [1, 40])
    for _ in range(int(case["ops"])):
        planned = sum(-(-len(tokens) // block_size) + 1 for tokens in live.values())
        full = planned >= num_blocks * float(case.get("overcommit", 1.0))
        roll = rng.random()
        if live and (full or roll < float(case.get("free", 0.08))):
            sid = min(live) if full else rng.choice(list(live))
            script.append(["free", sid])
            del live[sid], computed[sid]
        elif not live or roll < float(case.get("new", 0.25)):
            prompt = [rng.randrange(VOCAB_SIZE) for _ in range(rng.randint(low, high))]
            if live and rng.random() < float(case.get("share", 0.6)):
                owner = live[rng.choice(list(live))]
                prompt = owner[: rng.randint(1, len(owner))] + prompt
                if rng.random() < float(case.get("duplicate", 0.2)):
                    # the same prompt again, whole blocks of it: everything but the last
                    # token may be a hit
                    prompt = owner[: max(len(owner) // block_size, 1) * block_size]
            script.append(["new", next_sid, prompt])
            live[next_sid], computed[next_sid] = list(prompt), 0
            next_sid += 1
        elif roll < float(case.get("new", 0.25)) + float(case.get("fork", 0.05)):
            parent = rng.choice(list(live))
            script.append(["fork", parent, next_sid])
            live[next_sid], computed[next_sid] = list(live[parent]), computed[parent]
            next_sid += 1
        else:
            sid = rng.choice(list(live))
            token = rng.randrange(VOCAB_SIZE)
            chunk = rng.choice(case.get("chunks", [1, 1, 4, 16]))
            script.append(["advance", sid, chunk, token])
            computed[sid] = min(computed[sid] + chunk, len(live[sid]))
            if computed[sid] == len(live[sid]):
                live[sid].append(token)
    script.extend(["free", sid] for sid in sorted(live))
    return script


def capacity_script(case: dict[str, Any], rng: random.Random) -> list[list]:
    """Sequences with one shared prompt and short own tails, each prefilled as it arrives."""
    prefix = [rng.randrange(VOCAB_SIZE) for _ in range(int(case["shared_prefix"]))]
    script: list[list] = []
    for sid in range(int(case["sequences"])):
        tail = [rng.randrange(VOCAB_SIZE) for _ in range(rng.randint(1, 8))]
        script.append(["new", sid, prefix + tail])
        script.append(["advance", sid, 10**6, rng.randrange(VOCAB_SIZE)])
    return script


def capacity_of(advanced: list[bool]) -> int:
    """How many sequences were prefilled before the first one that did not fit."""
    return next((index for index, ok in enumerate(advanced) if not ok), len(advanced))


class _Seq:
    def __init__(self, tokens: list[int]) -> None:
        self.tokens = list(tokens)
        self.computed = 0
        self.table: list[int] = []


class CacheModel:
    """The trusted model of the KV cache: what every slot holds, who holds every block."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.num_blocks, self.block_size = num_blocks, block_size
        self.seqs: dict[Any, _Seq] = {}
        self.content: dict[int, list[tuple[int, int] | None]] = {}
        self.registered: dict[int, tuple[int, ...]] = {}
        # every block that ever held each registered content: a hit is required only for
        # content that one block ever held (with duplicates, which copy an implementation
        # keeps registered is its own choice)
        self.key_blocks: dict[tuple[int, ...], set[int]] = {}

    def blocks(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def holders(self) -> Counter:
        return Counter(block for seq in self.seqs.values() for block in seq.table)

    def free_count(self) -> int:
        return self.num_blocks - len(self.holders())

    def owner_of(self, block: int, besides: int) -> int | None:
        return next(
            (sid for sid, s in self.seqs.items() if sid != besides and block in s.table), None
        )

    def check_table(self, where: str, sid: int, table: Any) -> list[int]:
        if not isinstance(table, list) or not all(
            isinstance(b, int) and 0 <= b < self.num_blocks for b in table
        ):
            raise fail(
                f"{where}: sequence {sid}'s block table {table!r} is not a list of block ids"
            )
        if len(set(table)) != len(table):
            raise fail(f"{where}: sequence {sid}'s block table {table} lists a block twice")
        return table

    def check_free(self, where: str, free: Any) -> None:
        want = self.free_count()
        if free == want:
            return
        if not self.seqs:
            raise fail(
                f"leak: {self.num_blocks - free} blocks not freed after all sequences "
                f"finished ({where}; num_free_blocks is {free} of {self.num_blocks})"
            )
        raise fail(
            f"{where}: num_free_blocks is {free}, but live sequences hold "
            f"{self.num_blocks - want} of the {self.num_blocks} blocks, so {want} are free"
        )

    def holds_tokens(self, block: int, tokens: list[int], start: int, count: int) -> bool:
        content = self.content.get(block)
        if content is None:
            return False
        return all(
            content[offset] == (tokens[start + offset], start + offset) for offset in range(count)
        )

    def required_hit_blocks(self, tokens: list[int]) -> tuple[int, int | None]:
        """Full blocks of ``tokens[:-1]`` held, registered, by live sequences; and one holder."""
        bs, found, holder = self.block_size, 0, None
        while (found + 1) * bs <= len(tokens) - 1:
            key = tuple(tokens[: (found + 1) * bs])
            if len(self.key_blocks.get(key, ())) != 1:
                break
            owner = next(
                (
                    sid
                    for sid, s in self.seqs.items()
                    if len(s.table) > found and self.registered.get(s.table[found]) == key
                ),
                None,
            )
            if owner is None:
                break
            found, holder = found + 1, owner
        return found, holder

    def usage(self) -> tuple[int, int]:
        """Blocks in use, and blocks shared by several sequences."""
        holders = self.holders()
        return len(holders), sum(count > 1 for count in holders.values())

    def prefix(
        self, where: str, sid: Any, tokens: list[int], cached: Any, table: Any, free: Any
    ) -> None:
        """``allocate_prefix`` of a sequence with these known tokens returned ``cached`` and
        this block table."""
        bs = self.block_size
        table = self.check_table(where, sid, table)
        if not isinstance(cached, int) or cached != len(table) * bs:
            raise fail(
                f"{where}: allocate_prefix returned {cached!r} but put {len(table)} blocks of "
                f"{bs} tokens in the block table"
            )
        if cached > len(tokens) - 1:
            raise fail(
                f"{where}: allocate_prefix returned {cached} cached tokens for a sequence of "
                f"{len(tokens)}; the last known token must never count as a hit"
            )
        for index, block in enumerate(table):
            if not self.holds_tokens(block, tokens, index * bs, bs):
                raise fail(
                    f"{where}: allocate_prefix gave sequence {sid} block {block} for tokens "
                    f"{index * bs}..{index * bs + bs - 1}, but that block holds other tokens"
                )
        need, holder = self.required_hit_blocks(tokens)
        if len(table) < need:
            raise fail(
                f"{where}: prefix hit missed: sequence {sid}'s first {need * bs} tokens are "
                f"cached in sequence {holder}'s blocks {self.seqs[holder].table[:need]}, but "
                f"allocate_prefix found {cached}"
            )
        seq = self.seqs[sid] = _Seq(tokens)
        seq.computed, seq.table = cached, table
        self.check_free(where, free)

    def append(
        self, where: str, sid: Any, num_new: int, ok: Any, table: Any, copies: Any, free: Any
    ) -> None:
        """``append_slots(sequence, num_new)`` returned ``ok``, this table and these copies."""
        if not isinstance(ok, bool):
            raise TypeError(f"append_slots returned {ok!r}")
        seq, bs = self.seqs[sid], self.block_size
        old = list(seq.table)
        first = seq.computed // bs
        holders = self.holders()
        shared = first < len(old) and holders[old[first]] > 1
        needed = max(self.blocks(seq.computed + num_new) - len(old), 0) + shared
        free_before = self.free_count()
        table = self.check_table(where, sid, table)
        if not ok:
            if needed <= free_before:
                raise fail(
                    f"{where}: append_slots(sequence {sid}, {num_new}) returned False with "
                    f"{free_before} free blocks; it needs {needed}"
                )
            if table != old or free != free_before:
                raise fail(
                    f"{where}: append_slots(sequence {sid}, {num_new}) returned False but changed "
                    f"the block table from {old} to {table} (all or nothing)"
                )
            return
        self._check_grown(where, sid, seq, old, table, copies, first, shared, num_new)
        for src, dst in copies:
            self.content[dst] = list(self.content.get(src) or [None] * bs)
            self.registered.pop(dst, None)
        for block in table[len(old) :]:
            self.content[block] = [None] * bs
            self.registered.pop(block, None)
        seq.table = table
        self.check_free(where, free)

    def write(self, where: str, sid: Any, tokens: list[int], computed: int) -> None:
        """The engine computed the sequence's tokens up to ``computed`` into its blocks, and
        ``cache_full_blocks`` registers the full ones."""
        seq, bs = self.seqs[sid], self.block_size
        seq.tokens = list(tokens)
        self._write(where, sid, seq, computed - seq.computed)
        seq.computed = computed
        for index in range(seq.computed // bs):
            key = tuple(seq.tokens[: (index + 1) * bs])
            self.registered.setdefault(seq.table[index], key)
            self.key_blocks.setdefault(key, set()).add(seq.table[index])

    def _check_grown(self, where, sid, seq, old, table, copies, first, shared, num_new) -> None:
        if len(table) != self.blocks(seq.computed + num_new):
            raise fail(
                f"{where}: after append_slots(sequence {sid}, {num_new}) the block table has "
                f"{len(table)} blocks; {seq.computed + num_new} tokens need exactly "
                f"{self.blocks(seq.computed + num_new)}"
            )
        for index, block in enumerate(old):
            if index != first and table[index] != block:
                raise fail(
                    f"{where}: append_slots replaced block {block} at position {index} of "
                    f"sequence {sid}'s table with {table[index]}"
                )
        if shared and table[first] == old[first]:
            other = self.owner_of(old[first], sid)
            raise fail(
                f"{where}: copy-on-write missing: block {old[first]} is shared by sequences "
                f"{sid} and {other}, and sequence {sid} is about to write into it"
            )
        want_copies = [[old[first], table[first]]] if shared else []
        if not shared and first < len(old) and table[first] != old[first]:
            raise fail(f"{where}: append_slots replaced block {old[first]}, which is not shared")
        if copies != want_copies:
            raise fail(
                f"{where}: take_copies() returned {copies}; expected {want_copies} for this "
                "append_slots"
            )
        fresh = table[len(old) :] + ([table[first]] if shared else [])
        for block in fresh:
            other = self.owner_of(block, sid)
            if other is not None:
                raise fail(
                    f"{where}: block {block} owned by sequences {other} and {sid}: it was "
                    "handed out while still in use"
                )

    def _write(self, where: str, sid: int, seq: _Seq, num_new: int) -> None:
        """Write the new tokens; a token another live sequence reads must not change."""
        bs = self.block_size
        for position in range(seq.computed, seq.computed + num_new):
            block, offset = seq.table[position // bs], position % bs
            for other_sid, other in self.seqs.items():
                if other_sid == sid or block not in other.table:
                    continue
                other_position = other.table.index(block) * bs + offset
                if other_position < other.computed:
                    raise fail(
                        f"{where}: sequence {sid} writes token {position} into block {block}, "
                        f"overwriting token {other_position} of sequence {other_sid}"
                    )
            self.content[block][offset] = (seq.tokens[position], position)

    def fork(
        self, where: str, parent: Any, child: Any, computed: Any, table: Any, free: Any
    ) -> None:
        source = self.seqs[parent]
        if table != source.table or computed != source.computed:
            raise fail(
                f"{where}: after fork the child has blocks {table} and {computed} computed "
                f"tokens; the parent has {source.table} and {source.computed}"
            )
        seq = self.seqs[child] = _Seq(source.tokens)
        seq.computed, seq.table = source.computed, list(table)
        self.check_free(where, free)

    def free(self, where: str, sid: Any, table: Any, free: Any) -> None:
        if table != []:
            raise fail(f"{where}: free left sequence {sid}'s block table as {table}")
        held = self.seqs.pop(sid).table if sid in self.seqs else []
        want = self.free_count()
        if isinstance(free, int) and self.seqs and free < want:
            raise fail(
                f"{where}: leak: after free(sequence {sid}) num_free_blocks is {free}, but "
                f"{want} blocks are free: {want - free} of its blocks {held} were not released"
            )
        self.check_free(where, free)


def usage_picture(usage: list[tuple[int, int]], num_blocks: int) -> dict[str, Any]:
    """What the results page draws of one checked op script: KV blocks in use and blocks
    shared, op by op; a long script is binned (``stride`` ops a point, each point the bin's
    peak) to at most ``PICTURE_POINTS`` points."""
    stride = max(1, -(-len(usage) // PICTURE_POINTS))
    bins = [usage[start : start + stride] for start in range(0, len(usage), stride)]
    return {
        "kind": "kv_blocks",
        "ops": len(usage),
        "stride": stride,
        "num_blocks": num_blocks,
        "used": [max(used for used, _ in part) for part in bins],
        "shared": [max(shared for _, shared in part) for part in bins],
    }


@dataclass
class EngineRun:
    """One run of a workload in the trusted engine with an allocator behind a proxy: the
    outputs by request id, and the figures the trusted side counted."""

    outputs: dict[str, dict[str, Any]]
    steps: int
    computed_tokens: int
    cached_tokens: int
    preemptions: int


def engine_case_config(case: dict[str, Any]) -> dict[str, Any]:
    """The EngineConfig fields of an engine-mode case (prefix caching on, the default)."""
    return {
        "block_size": int(case["block_size"]),
        "num_kv_blocks": int(case["num_blocks"]),
        "max_num_seqs": int(case.get("max_num_seqs", 8)),
        "max_num_batched_tokens": int(case.get("max_num_batched_tokens", 64)),
    }


def run_engine(
    link: Link | InProcessLink, requests: list[dict[str, Any]], config: dict[str, Any]
) -> EngineRun:
    """Serve ``requests`` in the trusted engine (its FCFS scheduler) with the allocator behind
    ``link``, every answer checked before the engine uses it."""
    from grader.harnesses.allocator_link import AllocatorProxy

    max_steps = 3 * serial_bound(requests, config["max_num_batched_tokens"])
    with one_thread():
        engine = tiny_engine(config, allocator_cls=functools.partial(AllocatorProxy, link=link))
        result = drive(engine, requests, max_steps, clock_ns, engine.allocator.at_step)
    engine.allocator.flush()
    return EngineRun(
        outputs=result["outputs"],
        steps=result["steps"],
        computed_tokens=sum(n for record in engine.trace for _, n in record.scheduled),
        cached_tokens=engine.allocator.hits,
        preemptions=engine.scheduler.num_preemptions,
    )


def policy_merit(
    theirs: EngineRun, ours: EngineRun, fitted: int, reference_fitted: int
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """An allocator's score against the reference's, and both sides' figures: the geometric
    mean of two ratios, each above 1 when the candidate is better.

    * work: the tokens the trusted engine computed to serve the benchmark workload (prompts,
      recomputation after preemption and decodes), the reference's over the candidate's. A
      prefix hit is prefill the engine does not compute, and an allocator that keeps freed
      blocks findable (LRU) hits again when a preempted or a later request comes back;
    * capacity: the sequences sharing one prompt that fit in the pool, the candidate's over
      the reference's: how large a batch the cache holds.

    These are what a serving engineer asks of a KV allocator (compute saved by the prefix
    cache, batch size per GiB), counted in tokens and sequences, so the score is the same on
    any host under any load.
    """
    sides = []
    for run, count in ((theirs, fitted), (ours, reference_fitted)):
        sides.append(
            {
                "computed_tokens": run.computed_tokens,
                "prefix_hit_tokens": run.cached_tokens,
                "preemptions": run.preemptions,
                "steps": run.steps,
                "sequences_fit": count,
            }
        )
    work = ours.computed_tokens / theirs.computed_tokens
    capacity = fitted / max(reference_fitted, 1)
    return round(math.sqrt(work * capacity), 3), sides[0], sides[1]


@memoized_by_value
def reference_engine_run(
    code: str, entry_point: str, requests: list[dict[str, Any]], config: dict[str, Any]
) -> EngineRun:
    """A problem's reference allocator (``code``) serving a workload, run in this process."""
    link = _reference_link(code, entry_point)
    return run_reference(lambda: run_engine(link, requests, config))


@memoized_by_value
def reference_capacity(
    code: str, entry_point: str, script: list[list], num_blocks: int, block_size: int
) -> int:
    """How many of a capacity script's sequences fit with a problem's reference allocator."""
    from grader.harnesses.allocator_link import AllocatorProxy

    link = _reference_link(code, entry_point)
    proxy = functools.partial(AllocatorProxy, num_blocks, block_size, link=link)
    return capacity_of(run_reference(lambda: run_script(proxy(), script)))


def _reference_link(code: str, entry_point: str) -> InProcessLink:
    from grader.harnesses.allocator_link import AllocatorMirror

    return InProcessLink(AllocatorMirror(reference_class(code, entry_point)))


@register
class AllocatorHarness(PolicyHarness):
    kind = "allocator"
    version = "2"
    sandbox_paths = ENGINE_DATA_TYPES

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        if case.get("throughput"):  # on a card, its on_gpu keys (time limit included) apply
            case = throughput_case(case, throughput_target())
        link = Link(session, self.timeout_s(case))
        mode = case.get("mode", "ops")
        if case.get("throughput"):
            result = self._throughput(link, case, rng)
        elif mode == "engine":
            result = self._engine_case(link, case, rng, timed)
        else:
            result = self._script_case(link, case, rng, timed, mode)
        result.timing = link.timing()
        return result

    def _script_case(self, link, case, rng, timed, mode) -> CaseResult:
        from grader.harnesses.allocator_link import AllocatorProxy

        num_blocks, block_size = int(case["num_blocks"]), int(case["block_size"])
        script = capacity_script(case, rng) if mode == "capacity" else make_script(case, rng)
        usage: list[tuple[int, int]] | None = None if timed else []
        advanced = run_script(AllocatorProxy(num_blocks, block_size, link=link), script, usage)
        if usage is None:
            return CaseResult(_NO_TIMING)
        details = {"ops": len(script), "trace": usage_picture(usage, num_blocks)}
        if mode != "capacity":
            return CaseResult(_NO_TIMING, details=details)
        fitted = capacity_of(advanced)
        reference_fitted = self._reference_capacity(script, num_blocks, block_size)
        if case.get("score"):
            self.scored[case["name"]] = (fitted, reference_fitted)
        message = (
            f"{fitted} concurrent sequences fit in {num_blocks} blocks (reference "
            f"{reference_fitted})"
        )
        details |= {"fitted": fitted, "reference_fitted": reference_fitted}
        return CaseResult(_NO_TIMING, message, details)

    def _throughput(self, link: Link, case: dict[str, Any], rng: random.Random) -> CaseResult:
        """The GPU tier's test: the engine (its FCFS scheduler, prefix caching on) serving a
        workload with the candidate's allocator behind the link, every answer checked as in
        the other tests, on this worker's card (SmolLM2's shape) or, without one, the tiny
        model on the CPU; then with the engine's own ``PrefixCachingAllocator``. Output
        tokens/s and TTFT/TPOT percentiles of both, labelled with the device. Greedy tokens
        are checked on the CPU (float32) only, as for the scheduler."""
        from engine.prefix_caching_allocator import PrefixCachingAllocator
        from grader.harnesses.allocator_link import AllocatorProxy

        target = throughput_target()
        config = engine_case_config(case)
        requests = self.workload(case, rng)
        max_steps = 3 * serial_bound(requests, config["max_num_batched_tokens"])
        linked = {"allocator_cls": functools.partial(AllocatorProxy, link=link)}
        theirs = throughput_run(target, requests, config, max_steps, lambda chosen: linked)
        if target.device == "cpu":
            wrong = outputs_mismatch(theirs["outputs"], self.expected(requests, config), requests)
            if wrong:
                raise fail(wrong)
        own = {"allocator_cls": PrefixCachingAllocator}
        ours = throughput_run(target, requests, config, max_steps, lambda chosen: own)
        message = throughput_message(theirs["figures"], ours["figures"], "PrefixCachingAllocator")
        details = {"throughput": theirs["figures"], "engine": ours["figures"]}
        return CaseResult(_NO_TIMING, message, details)

    def _engine_case(self, link, case, rng, timed) -> CaseResult:
        config = engine_case_config(case)
        requests = self.workload(case, rng)
        run = run_engine(link, requests, config)
        if timed:
            return CaseResult(_NO_TIMING)
        wrong = outputs_mismatch(run.outputs, self.expected(requests, config), requests)
        if wrong:
            raise fail(wrong)
        prompt_tokens = sum(len(r["prompt"]) for r in requests)
        found = {
            "cached_tokens": run.cached_tokens,
            "prompt_tokens": prompt_tokens,
            "computed_tokens": run.computed_tokens,
            "preemptions": run.preemptions,
        }
        message = (
            f"outputs equal the engine's; it computed {run.computed_tokens} tokens and found "
            f"{run.cached_tokens} in the prefix cache"
        )
        if not case.get("score"):
            return CaseResult(_NO_TIMING, message, found)
        spec = self.spec
        reference = reference_engine_run(spec.reference_code, spec.entry_point, requests, config)
        self.scored[case["name"]] = (run, reference)
        ours = {
            "cached_tokens": reference.cached_tokens,
            "prompt_tokens": prompt_tokens,
            "computed_tokens": reference.computed_tokens,
            "preemptions": reference.preemptions,
        }
        message += (
            f" (with the reference: {reference.computed_tokens} computed, "
            f"{reference.cached_tokens} found)"
        )
        return CaseResult(_NO_TIMING, message, found | {"reference": ours})

    def workload(self, case: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
        """The requests an engine-mode or throughput test serves (drawn from ``rng``)."""
        return random_workload(case, rng)

    def expected(self, requests: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, list]:
        """The greedy tokens every request must get: the engine's own parts' (its oracle)."""
        return expected_tokens(requests, config)

    def merit(self, scored: dict[str, Any]) -> PolicyScore:
        """:func:`policy_merit` of the scored engine and capacity tests (workloads the seed
        alone draws)."""
        runs = [value for value in scored.values() if isinstance(value[0], EngineRun)]
        counts = [value for value in scored.values() if isinstance(value[0], int)]
        (theirs, ours), (fitted, reference_fitted) = runs[0], counts[0]
        score, mine, reference = policy_merit(theirs, ours, fitted, reference_fitted)
        message = (
            f"{score:.3f}x the reference's policy: the engine computed {mine['computed_tokens']} "
            f"tokens with {mine['prefix_hit_tokens']} prefix-hit tokens (reference "
            f"{reference['computed_tokens']} with {reference['prefix_hit_tokens']}); "
            f"{fitted} sequences fit (reference {reference_fitted})"
        )
        return PolicyScore(score, message, mine, reference)

    def _reference_capacity(self, script: list[list], num_blocks: int, block_size: int) -> int:
        """How many of the capacity script's sequences fit with the problem's reference."""
        spec = self.spec
        return reference_capacity(
            spec.reference_code, spec.entry_point, script, num_blocks, block_size
        )

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        from grader.harnesses.allocator_link import serve_in_sandbox

        return serve_in_sandbox(entry, request)


# run_case measures every case's time itself: the link's outside clock.
_NO_TIMING = CallTiming(0, 0)
