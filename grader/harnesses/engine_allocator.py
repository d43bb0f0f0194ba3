"""The ``allocator`` kind: the candidate's ``BlockAllocator`` against a model of the rules.

An *op script* (generated on the trusted side from the secret seed) drives the allocator the
way the engine does: ``new`` (a sequence arrives: ``allocate_prefix``), ``advance`` (the
scheduler gives it ``min(chunk, tokens left)`` tokens: ``append_slots``, ``take_copies``, then
the model "writes" them, ``num_computed_tokens`` moves, ``cache_full_blocks``, and a sampled
token is appended when the sequence caught up), ``fork`` and ``free``. Prompts share prefixes
with live sequences and forks share partial blocks, so prefix hits and copy-on-write happen.

The sandbox reports each op's result (return value, the block table, the copies queued,
``num_free_blocks``); the trusted side replays the script on its own model of the KV cache,
where every slot holds the (token, position) written into it, and checks after every op:

* tables: valid, distinct block ids; ``append_slots`` covers exactly the tokens asked, keeps
  the old blocks, hands out only blocks no live sequence holds, and is all or nothing (False
  only when too few blocks are free, and then nothing changed);
* copy-on-write: the block a sequence is about to write into is copied first when it is
  shared, and the copy is queued; no write ever changes a token another live sequence reads;
* prefix hits: what ``allocate_prefix`` returns holds exactly the sequence's tokens, never the
  last token, and at least the longest prefix that live sequences hold in registered blocks;
* counts: ``num_free_blocks`` equals the pool minus the blocks live sequences hold; after
  every sequence is freed, every block is free (a leak is named with its size).

Then the engine serves a shared-prefix workload with the candidate's allocator and a pool
small enough to preempt; its greedy tokens must equal the engine's own. The timed calls run a
long op script (every result checked): the score is operations per second relative to the
reference. A ``capacity`` test admits sequences with one shared prompt until the pool is full
and reports how many fit, next to the reference's count on the same pool.
"""

from __future__ import annotations

import mmap
import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from grader.harnesses import register
from grader.harnesses.base import clock_ns
from grader.harnesses.engine_run import (
    VOCAB_SIZE,
    CaseResult,
    EngineHarness,
    drive,
    engine_class_used,
    expected_tokens,
    fail,
    one_thread,
    outputs_mismatch,
    random_workload,
    serial_bound,
    tiny_engine,
)

if TYPE_CHECKING:
    from grader.sandbox import SandboxSession

# A run's picture on the results page: KV blocks in use at this many points at most (a long
# script puts several ops in a point): about 2 KB of JSON per test.
PICTURE_POINTS = 200


def run_script(
    allocator_cls: Any, num_blocks: int, block_size: int, script: list[list], clock: Callable
) -> dict[str, Any]:
    """Run an op script on a fresh allocator; returns each op's result and the loop's time."""
    from engine.sequence import Sequence

    allocator = allocator_cls(num_blocks, block_size, True)
    seqs: dict[int, Any] = {}
    results: list[Any] = []
    start_ns = clock()
    for op in script:
        kind = op[0]
        if kind == "new":
            seq = seqs[op[1]] = Sequence(op[2])
            cached = allocator.allocate_prefix(seq)
            seq.num_computed_tokens = seq.num_cached_tokens = cached
            results.append([cached, list(seq.block_table), allocator.num_free_blocks])
        elif kind == "advance":
            seq = seqs[op[1]]
            num_new = min(op[2], seq.num_tokens - seq.num_computed_tokens)
            ok = allocator.append_slots(seq, num_new)
            copies = [list(copy) for copy in allocator.take_copies()]
            if ok:
                seq.num_computed_tokens += num_new
                allocator.cache_full_blocks(seq)
                if seq.num_computed_tokens == seq.num_tokens:
                    seq.token_ids.append(op[3])
            results.append(
                [num_new, bool(ok), list(seq.block_table), copies, allocator.num_free_blocks]
            )
        elif kind == "fork":
            parent = seqs[op[1]]
            child = seqs[op[2]] = Sequence(list(parent.prompt_token_ids))
            child.token_ids = list(parent.token_ids)
            allocator.fork(parent, child)
            results.append(
                [child.num_computed_tokens, list(child.block_table), allocator.num_free_blocks]
            )
        else:
            seq = seqs.pop(op[1])
            allocator.free(seq)
            results.append([list(seq.block_table), allocator.num_free_blocks])
    return {"results": results, "elapsed_ns": clock() - start_ns}


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


def capacity_of(script: list[list], results: list[Any]) -> int:
    """How many sequences were prefilled before the first one that did not fit."""
    fitted = 0
    for op, result in zip(script, results, strict=True):
        if op[0] == "advance":
            if not result[1]:
                break
            fitted += 1
    return fitted


class _Seq:
    def __init__(self, tokens: list[int]) -> None:
        self.tokens = list(tokens)
        self.computed = 0
        self.table: list[int] = []


class CacheModel:
    """The trusted model of the KV cache: what every slot holds, who holds every block."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.num_blocks, self.block_size = num_blocks, block_size
        self.seqs: dict[int, _Seq] = {}
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

    def new(self, where: str, sid: int, tokens: list[int], result: Any) -> None:
        cached, table, free = result
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

    def advance(self, where: str, sid: int, chunk: int, token: int, result: Any) -> None:
        num_new, ok, table, copies, free = result
        seq, bs = self.seqs[sid], self.block_size
        want_new = min(chunk, len(seq.tokens) - seq.computed)
        if num_new != want_new:
            raise fail(f"{where}: the sequence state was changed outside the allocator's rules")
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
        self._write(where, sid, seq, num_new)
        seq.computed += num_new
        if seq.computed == len(seq.tokens):
            seq.tokens.append(token)
        for index in range(seq.computed // bs):
            key = tuple(seq.tokens[: (index + 1) * bs])
            self.registered.setdefault(seq.table[index], key)
            self.key_blocks.setdefault(key, set()).add(seq.table[index])
        self.check_free(where, free)

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

    def fork(self, where: str, parent: int, child: int, result: Any) -> None:
        computed, table, free = result
        source = self.seqs[parent]
        if table != source.table or computed != source.computed:
            raise fail(
                f"{where}: after fork the child has blocks {table} and {computed} computed "
                f"tokens; the parent has {source.table} and {source.computed}"
            )
        seq = self.seqs[child] = _Seq(source.tokens)
        seq.computed, seq.table = source.computed, list(table)
        self.check_free(where, free)

    def free(self, where: str, sid: int, result: Any) -> None:
        table, free = result
        if table != []:
            raise fail(f"{where}: free left sequence {sid}'s block table as {table}")
        held = self.seqs.pop(sid).table
        want = self.free_count()
        if isinstance(free, int) and self.seqs and free < want:
            raise fail(
                f"{where}: leak: after free(sequence {sid}) num_free_blocks is {free}, but "
                f"{want} blocks are free: {want - free} of its blocks {held} were not released"
            )
        self.check_free(where, free)


def check_script(
    script: list[list],
    results: Any,
    num_blocks: int,
    block_size: int,
    usage: list[tuple[int, int]] | None = None,
) -> None:
    """Replay ``script`` with the sandbox's ``results`` on the trusted model; raise when wrong.

    ``usage``, when given, receives (blocks in use, blocks shared by several sequences) after
    every op, as the trusted model counts them.
    """
    if not isinstance(results, list) or len(results) != len(script):
        raise fail("the sandbox did not report a result for every op")
    model = CacheModel(num_blocks, block_size)
    for index, (op, result) in enumerate(zip(script, results, strict=True)):
        where = f"op {index} ({op[0]} {op[1]})"
        try:
            if op[0] == "new":
                model.new(where, op[1], op[2], result)
            elif op[0] == "advance":
                model.advance(where, op[1], op[2], op[3], result)
            elif op[0] == "fork":
                model.fork(where, op[1], op[2], result)
            else:
                model.free(where, op[1], result)
        except (TypeError, ValueError, IndexError, KeyError) as error:
            raise fail(f"{where}: malformed result {result!r} ({error})") from None
        if usage is not None:
            holders = model.holders()
            usage.append((len(holders), sum(count > 1 for count in holders.values())))


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


@register
class AllocatorHarness(EngineHarness):
    kind = "allocator"
    version = "1"
    engine_classes = ("engine.block_allocator.PrefixCachingAllocator",)

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        mode = case.get("mode", "ops")
        if mode == "engine":
            return self._engine_case(session, case, rng, timed)
        num_blocks, block_size = int(case["num_blocks"]), int(case["block_size"])
        script = capacity_script(case, rng) if mode == "capacity" else make_script(case, rng)
        request = {"op": "script", "num_blocks": num_blocks, "block_size": block_size}
        reply, timing = self.call(session, request | {"script": script}, case, timed)
        usage: list[tuple[int, int]] | None = None if timed else []
        check_script(script, reply.get("results"), num_blocks, block_size, usage)
        if timed:
            return CaseResult(timing)
        details = {
            "ops": len(script),
            "ops_per_s": round(len(script) / timing.outside_ns * 1e9),
            "trace": usage_picture(usage, num_blocks),
        }
        if mode != "capacity":
            return CaseResult(timing, details=details)
        fitted = capacity_of(script, reply["results"])
        reference = self._reference_class()
        with one_thread():
            theirs = run_script(reference, num_blocks, block_size, script, clock_ns)["results"]
        reference_fitted = capacity_of(script, theirs)
        message = (
            f"{fitted} concurrent sequences fit in {num_blocks} blocks (reference "
            f"{reference_fitted})"
        )
        return CaseResult(
            timing, message, details | {"fitted": fitted, "reference_fitted": reference_fitted}
        )

    def _engine_case(self, session, case, rng, timed) -> CaseResult:
        config = {
            "block_size": int(case["block_size"]),
            "num_kv_blocks": int(case["num_blocks"]),
            "max_num_seqs": int(case.get("max_num_seqs", 8)),
            "max_num_batched_tokens": int(case.get("max_num_batched_tokens", 64)),
        }
        requests = random_workload(case, rng)
        max_steps = 3 * serial_bound(requests, config["max_num_batched_tokens"])
        expected = expected_tokens(requests, config)
        request = {"op": "engine", "config": config, "requests": requests, "max_steps": max_steps}
        reply, timing = self.call(session, request, case, timed)
        outputs = reply.get("outputs")
        if not isinstance(outputs, dict):
            raise fail("the sandbox returned no outputs")
        wrong = outputs_mismatch(outputs, expected, requests)
        if wrong:
            raise fail(wrong)
        cached = sum(int(out.get("cached_tokens") or 0) for out in outputs.values())
        prompt_tokens = sum(len(r["prompt"]) for r in requests)
        return CaseResult(
            timing,
            f"outputs equal the engine's; {cached} of {prompt_tokens} prompt tokens were prefix hits",
            {"cached_tokens": cached, "prompt_tokens": prompt_tokens},
        )

    def _reference_class(self) -> Any:
        namespace: dict[str, Any] = {"__name__": "reference"}
        exec(compile(self.spec.reference_code, "reference.py", "exec"), namespace)
        return namespace[self.spec.entry_point]

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        reused = engine_class_used(entry, AllocatorHarness.engine_classes)
        if reused:
            return {"ok": True, "elapsed_ns": 0, "reuses": reused}
        if request["op"] == "engine":
            engine = tiny_engine(request["config"], allocator_cls=entry)
            return {
                "ok": True,
                **drive(engine, request["requests"], request["max_steps"], clock_ns),
            }
        result = run_script(
            entry, request["num_blocks"], request["block_size"], request["script"], clock_ns
        )
        return {"ok": True, **result}
