"""The engine's own `BlockAllocator` (`engine/block_allocator.py`): reference counts, a
chained-hash prefix cache, LRU eviction of freed blocks, fork and copy-on-write."""

from __future__ import annotations

from collections import OrderedDict

from engine.block_allocator import BlockAllocator
from engine.sequence import Sequence


class PrefixCachingAllocator(BlockAllocator):
    """Reference allocator: reference counts, chained-hash prefix cache, LRU eviction, CoW."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        super().__init__(num_blocks, block_size, enable_prefix_caching)
        self.ref_counts = [0] * num_blocks
        self.block_hash: list[int | None] = [None] * num_blocks
        self.block_tokens: list[tuple[int, ...] | None] = [None] * num_blocks
        self.hash_to_block: dict[int, int] = {}
        self.free_blocks: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self.copies: list[tuple[int, int]] = []

    @property
    def num_free_blocks(self) -> int:
        return len(self.free_blocks)

    def _block_keys(self, seq: Sequence, token_ids: list[int], num_blocks: int) -> list[tuple]:
        """Chained `(hash, tokens)` keys of the first `num_blocks` blocks, memoised on `seq`."""
        keys = seq.block_hashes
        while len(keys) < num_blocks:
            index = len(keys)
            tokens = tuple(token_ids[index * self.block_size : (index + 1) * self.block_size])
            keys.append((hash((keys[-1][0] if keys else 0, tokens)), tokens))
        return keys[:num_blocks]

    def _take_free(self) -> int:
        block, _ = self.free_blocks.popitem(last=False)
        old = self.block_hash[block]
        if old is not None and self.hash_to_block.get(old) == block:
            del self.hash_to_block[old]
        self.block_hash[block] = self.block_tokens[block] = None
        self.ref_counts[block] = 1
        return block

    def _ref(self, block: int) -> None:
        if self.ref_counts[block] == 0:
            del self.free_blocks[block]
        self.ref_counts[block] += 1

    def allocate_prefix(self, seq: Sequence) -> int:
        assert not seq.block_table, "allocate_prefix needs an empty block table"
        if not self.enable_prefix_caching:
            return 0
        known = seq.all_token_ids[:-1]
        for key, tokens in self._block_keys(seq, known, len(known) // self.block_size):
            block = self.hash_to_block.get(key)
            if block is None or self.block_tokens[block] != tokens:
                break
            self._ref(block)
            seq.block_table.append(block)
        seq.num_cached_blocks = len(seq.block_table)
        return len(seq.block_table) * self.block_size

    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        table = seq.block_table
        end = seq.num_computed_tokens + num_new_tokens
        # The common decode case: the token lands in the last block, which is this sequence's
        # alone (15 of every 16 decode steps at block size 16 take this path).
        if (
            table
            and end <= len(table) * self.block_size
            and seq.num_computed_tokens >= (len(table) - 1) * self.block_size
            and self.ref_counts[table[-1]] == 1
        ):
            return True
        first = seq.num_computed_tokens // self.block_size
        needed = self.blocks_needed(seq.num_computed_tokens + num_new_tokens) - len(table)
        cow = first < len(table) and self.ref_counts[table[first]] > 1
        if max(needed, 0) + cow > self.num_free_blocks:
            return False
        if cow:
            fresh = self._take_free()
            self.ref_counts[table[first]] -= 1
            self.copies.append((table[first], fresh))
            table[first] = fresh
        for _ in range(needed):
            table.append(self._take_free())
        return True

    def cache_full_blocks(self, seq: Sequence) -> None:
        if not self.enable_prefix_caching:
            return
        num_full = min(seq.num_computed_tokens // self.block_size, len(seq.block_table))
        start = seq.num_cached_blocks
        if num_full <= start:
            return
        keys = self._block_keys(seq, seq.token_ids, num_full)
        for index in range(start, num_full):
            block, (key, tokens) = seq.block_table[index], keys[index]
            if self.block_hash[block] is None and key not in self.hash_to_block:
                self.block_hash[block], self.block_tokens[block] = key, tokens
                self.hash_to_block[key] = block
        seq.num_cached_blocks = num_full

    def free(self, seq: Sequence) -> None:
        for block in reversed(seq.block_table):
            self.ref_counts[block] -= 1
            if self.ref_counts[block] == 0:
                self.free_blocks[block] = None
        seq.block_table = []
        seq.num_cached_blocks = 0

    def fork(self, parent: Sequence, child: Sequence) -> None:
        for block in parent.block_table:
            self._ref(block)
        child.block_table = list(parent.block_table)
        child.num_computed_tokens = parent.num_computed_tokens
        child.block_hashes = list(parent.block_hashes)
        child.num_cached_blocks = parent.num_cached_blocks

    def take_copies(self) -> list[tuple[int, int]]:
        copies, self.copies = self.copies, []
        return copies
