"""The allocator kind's two halves: the trusted engine's (or op script's) allocator, whose
every answer is the candidate's, given in the sandbox on mirror Sequences.

Trusted side: :class:`AllocatorProxy` is a ``BlockAllocator``. Each call that needs an answer
(``allocate_prefix``, ``append_slots`` with its copies, ``fork``, ``free``) is one exchange; the
answer is checked on the :class:`~grader.harnesses.engine_allocator.CacheModel` before the
trusted Sequence or the engine uses it. ``cache_full_blocks`` has no answer: the model records
the tokens the engine wrote, and the call travels with the next request. ``num_free_blocks``
is the model's count, which every answer's count was checked against; ``take_copies`` returns
the copies the checked answers queued. So the block tables the engine writes KV into, and
every figure, are the trusted side's.

Sandbox side: :class:`AllocatorMirror` holds the candidate's allocator and mirror Sequences.

The protocol (JSON over the channel; only what changed crosses)::

    {"op": "open", "num_blocks": N, "block_size": B, "caching": true}  -> {"ok": true}
    {"op": "calls", "calls": [call, ...]}    -> {"ok": true, "r": the last call's result}

    call                                                        result
    ["allocate_prefix", id, computed, [new tokens]]             [cached, table, free]
    ["append_slots", id, computed, [new tokens], tokens]        [ok, table, copies, free]
    ["cache_full_blocks", id, computed, [new tokens]]           (none: sent ahead of the next)
    ["free", id, computed, [new tokens]]                        [table, free]
    ["fork", parent id, computed, [new tokens], child id]       [child's computed, table, free]
    ["num_free_blocks"]                                         [free]

``table`` is null when the sequence's block table is the one the sandbox last reported. A
sequence's tokens cross once, then only those appended since.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from engine.block_allocator import BlockAllocator
from engine.sequence import Sequence
from grader.harnesses.engine_allocator import CacheModel
from grader.harnesses.engine_run import fail

if TYPE_CHECKING:
    from grader.harnesses.engine_run import InProcessLink, Link

# What a malformed answer raises in the model's checks (a list too short, a str for an int).
MALFORMED = (TypeError, ValueError, IndexError, KeyError)


class AllocatorProxy(BlockAllocator):
    """Trusted: a ``BlockAllocator`` whose answers come from the candidate's, checked first.

    ``where`` names the op in messages (the op script's driver sets it); in the engine,
    :meth:`at_step` makes it the step and the call. ``hits`` counts the prefix-hit tokens
    of every checked ``allocate_prefix``.
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        enable_prefix_caching: bool = True,
        *,
        link: Link | InProcessLink,
    ) -> None:
        super().__init__(num_blocks, block_size, enable_prefix_caching)
        self.link = link
        self.model = CacheModel(num_blocks, block_size)
        self.where = "opening the allocator"
        self.step: int | None = None
        self.hits = 0
        self.deferred: list[list] = []
        self.copies: list[tuple[int, int]] = []
        #: tokens of each sequence the mirror holds, and the block table it last reported.
        self.tokens_sent: dict[str, int] = {}
        self.tables: dict[str, Any] = {}
        open_request = {
            "op": "open",
            "num_blocks": num_blocks,
            "block_size": block_size,
            "caching": enable_prefix_caching,
        }
        self.link.call(open_request)

    def at_step(self, step: int) -> None:
        """``drive``'s ``on_step``: name the engine's step in every message."""
        self.step = step

    @property
    def num_free_blocks(self) -> int:
        return self.model.free_count()

    def allocate_prefix(self, seq: Sequence) -> int:
        where, rid = self._where("allocate_prefix", seq), seq.request_id
        result = self._ask(where, ["allocate_prefix", *self._sync(seq)], 3)
        cached, table, free = result
        table = self._table(rid, table)
        self._check(where, result, self.model.prefix, rid, seq.token_ids, cached, table, free)
        seq.block_table = list(table)
        self.hits += cached
        return cached

    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        where, rid = self._where("append_slots", seq), seq.request_id
        call = ["append_slots", *self._sync(seq), num_new_tokens]
        result = self._ask(where, call, 4)
        ok, table, copies, free = result
        table = self._table(rid, table)
        self._check(where, result, self.model.append, rid, num_new_tokens, ok, table, copies, free)
        if ok:
            seq.block_table = list(table)
            self.copies += [(src, dst) for src, dst in copies]
        return ok

    def cache_full_blocks(self, seq: Sequence) -> None:
        where = self._where("cache_full_blocks", seq)
        self.model.write(where, seq.request_id, seq.token_ids, seq.num_computed_tokens)
        self.deferred.append(["cache_full_blocks", *self._sync(seq)])

    def free(self, seq: Sequence) -> None:
        where, rid = self._where("free", seq), seq.request_id
        result = self._ask(where, ["free", *self._sync(seq)], 2)
        table, free = result
        self._check(where, result, self.model.free, rid, self._table(rid, table), free)
        seq.block_table = []

    def fork(self, parent: Sequence, child: Sequence) -> None:
        where = self._where("fork", parent)
        call = ["fork", *self._sync(parent), child.request_id]
        result = self._ask(where, call, 3)
        self.tokens_sent[child.request_id] = len(child.token_ids)
        computed, table, free = result
        table = self._table(child.request_id, table)
        check = self.model.fork
        self._check(
            where, result, check, parent.request_id, child.request_id, computed, table, free
        )
        child.block_table = list(table)
        child.num_computed_tokens = computed

    def take_copies(self) -> list[tuple[int, int]]:
        copies, self.copies = self.copies, []
        return copies

    def flush(self) -> None:
        """Send the calls still waiting for a request, and check the free count after them."""
        if self.deferred:
            where = f"{self.where}, after the last call"
            result = self._ask(where, ["num_free_blocks"], 1)
            self._check(where, result, self.model.check_free, *result)

    def _where(self, method: str, seq: Sequence) -> str:
        if self.step is None:
            return self.where
        return f"step {self.step}, {method}(request {seq.request_id})"

    def _sync(self, seq: Sequence) -> list[Any]:
        """``[id, num_computed_tokens, tokens the mirror does not hold yet]``."""
        sent = self.tokens_sent.get(seq.request_id, 0)
        self.tokens_sent[seq.request_id] = len(seq.token_ids)
        return [seq.request_id, seq.num_computed_tokens, seq.token_ids[sent:]]

    def _ask(self, where: str, call: list[Any], size: int) -> list[Any]:
        request = {"op": "calls", "calls": [*self.deferred, call]}
        self.deferred = []
        result = self.link.call(request).get("r")
        if not isinstance(result, list) or len(result) != size:
            raise fail(
                f"{where}: the allocator's answer {_short(result)} is not {call[0]}'s result"
            )
        return result

    def _table(self, rid: str, table: Any) -> Any:
        """The block table an answer reports: null means the one reported last."""
        if table is None:
            return self.tables.get(rid, [])
        self.tables[rid] = table
        return table

    @staticmethod
    def _check(where: str, result: Any, check: Callable[..., None], *args: Any) -> None:
        try:
            check(where, *args)
        except MALFORMED as error:
            raise fail(f"{where}: malformed result {_short(result)} ({error})") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:199] + "…"


def _plain(value: Any) -> Any:
    """An integer of any kind (numpy's too) as a Python int, for JSON; anything else as is."""
    return int(value) if isinstance(value, numbers.Integral) else value


class AllocatorMirror:
    """In the sandbox (or, for the reference, in the trusted process): the candidate's
    allocator, called on mirror Sequences exactly as the trusted side calls its proxy."""

    #: the mirror of this sandbox process, between requests.
    in_sandbox: ClassVar[AllocatorMirror | None] = None
    #: set by an in-process link; an allocator never asks the trusted side anything.
    ask: Any = None

    def __init__(self, entry: Any) -> None:
        self.entry = entry
        self.allocator: Any = None
        self.seqs: dict[str, Sequence] = {}
        #: the block table of each sequence as last reported.
        self.reported: dict[str, list[Any]] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "open":
            self.allocator = self.entry(
                request["num_blocks"], request["block_size"], request["caching"]
            )
            self.seqs, self.reported = {}, {}
            return {"ok": True}
        result = None
        for call in request["calls"]:
            result = self._apply(call)
        return {"ok": True, "r": result}

    def _apply(self, call: list[Any]) -> Any:
        method = call[0]
        if method == "num_free_blocks":
            return [self._free()]
        seq = self._synced(*call[1:4])
        if method == "allocate_prefix":
            cached = self.allocator.allocate_prefix(seq)
            return [_plain(cached), self._table(seq), self._free()]
        if method == "append_slots":
            ok = self.allocator.append_slots(seq, call[4])
            copies = [[_plain(src), _plain(dst)] for src, dst in self.allocator.take_copies()]
            return [bool(ok), self._table(seq), copies, self._free()]
        if method == "cache_full_blocks":
            self.allocator.cache_full_blocks(seq)
            return None
        if method == "free":
            self.allocator.free(seq)
            return [self._table(seq), self._free()]
        child = Sequence(seq.prompt_token_ids, request_id=call[4])
        child.token_ids = list(seq.token_ids)
        self.seqs[child.request_id] = child
        self.allocator.fork(seq, child)
        return [_plain(child.num_computed_tokens), self._table(child), self._free()]

    def _synced(self, rid: str, computed: int, tokens: list[int]) -> Sequence:
        seq = self.seqs.get(rid)
        if seq is None:
            seq = self.seqs[rid] = Sequence(tokens, request_id=rid)
        else:
            seq.token_ids.extend(tokens)
        seq.num_computed_tokens = computed
        return seq

    def _table(self, seq: Sequence) -> list[Any] | None:
        table = [_plain(block) for block in seq.block_table]
        if self.reported.get(seq.request_id) == table:
            return None
        self.reported[seq.request_id] = table
        return table

    def _free(self) -> Any:
        return _plain(self.allocator.num_free_blocks)


def serve_in_sandbox(entry: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The allocator kind's ``serve``: every request goes to this sandbox's one mirror."""
    if AllocatorMirror.in_sandbox is None:
        AllocatorMirror.in_sandbox = AllocatorMirror(entry)
    return AllocatorMirror.in_sandbox.handle(request)
