from collections import OrderedDict

from engine.block_allocator import BlockAllocator
from engine.sequence import Sequence


class PagedAllocator(BlockAllocator):
    """Wrong: an off-by-one in allocate_prefix: it looks up every known token, the last one
    included, so a prompt that fills whole blocks is "fully cached" and nothing is left to compute."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        super().__init__(num_blocks, block_size, enable_prefix_caching)
        self.refs = [0] * num_blocks
        self.key_of: list[tuple | None] = [None] * num_blocks
        self.cached: dict[tuple, int] = {}
        # free blocks, least recently freed first; never-used blocks come before all of them
        self.free_list: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self.copies: list[tuple[int, int]] = []

    @property
    def num_free_blocks(self) -> int:
        return len(self.free_list)

    def _keys(self, tokens: list[int], count: int) -> list[tuple]:
        """Chained keys of the first `count` full blocks: (key of the block before, tokens)."""
        keys, parent = [], None
        for index in range(count):
            block_tokens = tuple(tokens[index * self.block_size : (index + 1) * self.block_size])
            parent = (hash((parent, block_tokens)), block_tokens)
            keys.append(parent)
        return keys

    def _fresh(self) -> int:
        block, _ = self.free_list.popitem(last=False)
        key = self.key_of[block]
        if key is not None and self.cached.get(key) == block:
            del self.cached[key]
        self.key_of[block] = None
        self.refs[block] = 1
        return block

    def _take(self, block: int) -> None:
        if self.refs[block] == 0:
            del self.free_list[block]
        self.refs[block] += 1

    def allocate_prefix(self, seq: Sequence) -> int:
        if not self.enable_prefix_caching:
            return 0
        known = seq.all_token_ids
        for key in self._keys(known, len(known) // self.block_size):
            block = self.cached.get(key)
            if block is None:
                break
            self._take(block)
            seq.block_table.append(block)
        seq.num_cached_blocks = len(seq.block_table)
        return len(seq.block_table) * self.block_size

    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        table = seq.block_table
        first = seq.num_computed_tokens // self.block_size
        grow = max(self.blocks_needed(seq.num_computed_tokens + num_new_tokens) - len(table), 0)
        cow = first < len(table) and self.refs[table[first]] > 1
        if grow + cow > self.num_free_blocks:
            return False
        if cow:
            fresh = self._fresh()
            self.refs[table[first]] -= 1
            self.copies.append((table[first], fresh))
            table[first] = fresh
        table.extend(self._fresh() for _ in range(grow))
        return True

    def cache_full_blocks(self, seq: Sequence) -> None:
        if not self.enable_prefix_caching:
            return
        full = min(seq.num_computed_tokens // self.block_size, len(seq.block_table))
        if full <= seq.num_cached_blocks:
            return
        keys = self._keys(seq.token_ids, full)
        for index in range(seq.num_cached_blocks, full):
            block, key = seq.block_table[index], keys[index]
            if self.key_of[block] is None and key not in self.cached:
                self.key_of[block] = key
                self.cached[key] = block
        seq.num_cached_blocks = full

    def free(self, seq: Sequence) -> None:
        # the tail first: a prompt's first blocks are the likeliest to be hit again
        for block in reversed(seq.block_table):
            self.refs[block] -= 1
            if self.refs[block] == 0:
                self.free_list[block] = None
        seq.block_table = []
        seq.num_cached_blocks = 0

    def fork(self, parent: Sequence, child: Sequence) -> None:
        for block in parent.block_table:
            self._take(block)
        child.block_table = list(parent.block_table)
        child.num_computed_tokens = parent.num_computed_tokens
        child.num_cached_blocks = parent.num_cached_blocks

    def take_copies(self) -> list[tuple[int, int]]:
        copies, self.copies = self.copies, []
        return copies
