"""The paged KV cache's bookkeeping, which physical blocks each sequence owns: the
`BlockAllocator` interface. Candidates implement it; the engine's own is
`engine/prefix_caching_allocator.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from engine.sequence import Sequence


class BlockAllocator(ABC):
    """Hands out fixed-size KV-cache blocks to sequences; shares full blocks by content.

    The KV cache is `num_blocks` physical blocks of `block_size` token slots each. A sequence's
    `block_table` lists its blocks in order: token `i` of the sequence lives in block
    `block_table[i // block_size]` at offset `i % block_size`, i.e. in the global slot
    `block_table[i // block_size] * block_size + i % block_size`.

    The engine calls, per step:

    1. `allocate_prefix(seq)` once, when a waiting sequence with an empty block table is
       admitted. It looks up the longest run of the sequence's *full* blocks whose content is
       already cached, takes a reference on each, puts them in `seq.block_table`, and returns the
       number of tokens they hold (a multiple of `block_size`). The lookup walks blocks from the
       start and stops at the first miss. Block `j`'s key is a chained hash
       `hash((key of block j-1, tuple(tokens of block j)))`, so a block matches only when every
       token before it matches too. The last known token never counts as a hit (only
       `seq.all_token_ids[:-1]` is looked up): the model must compute at least one token to
       produce logits.
    2. `append_slots(seq, num_new_tokens)` for every sequence the scheduler wants to run: make
       `seq.block_table` cover `seq.num_computed_tokens + num_new_tokens` tokens. All or nothing:
       return False and change nothing when too few free blocks are left. If the block that the
       first new token will be written into is shared (reference count > 1, after `fork`), copy
       on write: take a fresh block, queue the copy `(src, dst)` for the model runner (see
       `take_copies`), and put the fresh block in the table in its place.
    3. `cache_full_blocks(seq)` after the step, once `seq.num_computed_tokens` has advanced:
       register every block that is now completely computed under its chained hash, so later
       sequences can hit it.
    4. `free(seq)` when a sequence finishes or is preempted: drop one reference per block and
       clear `seq.block_table`. A block whose count reaches 0 becomes free but keeps its
       hash and contents, so a later `allocate_prefix` can still hit it; it is evicted (its
       hash forgotten) only when a fresh block is needed, least recently freed first.

    `fork(parent, child)` makes `child` share every block of `parent` (reference counts + 1) and
    copies `num_computed_tokens`: parallel sampling and beam search start this way.

    Example (the engine's own allocator, `engine/prefix_caching_allocator.py`; block_size 4,
    prefix caching on)::

        alloc = PrefixCachingAllocator(num_blocks=8, block_size=4)
        a = Sequence(list(range(10)))            # 10 tokens: blocks [0..3] [4..7] [8, 9]
        alloc.allocate_prefix(a)                 # -> 0, nothing cached yet
        alloc.append_slots(a, 10)                # -> True, a.block_table == [0, 1, 2]
        a.num_computed_tokens = 10
        alloc.cache_full_blocks(a)               # blocks 0 and 1 are now findable
        b = Sequence(list(range(8)) + [99])      # shares the first 8 tokens with a
        alloc.allocate_prefix(b)                 # -> 8, b.block_table == [0, 1]
        alloc.num_free_blocks                    # -> 5
    """

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching

    @property
    @abstractmethod
    def num_free_blocks(self) -> int:
        """Blocks that `append_slots` could hand out now (free, cached-but-unreferenced included)."""

    @abstractmethod
    def allocate_prefix(self, seq: Sequence) -> int:
        """Give `seq` (empty block table) its cached prefix blocks; return their token count."""

    @abstractmethod
    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        """Cover `seq.num_computed_tokens + num_new_tokens` tokens; all or nothing."""

    @abstractmethod
    def cache_full_blocks(self, seq: Sequence) -> None:
        """Register `seq`'s fully computed blocks under their chained hashes."""

    @abstractmethod
    def free(self, seq: Sequence) -> None:
        """Release `seq`'s blocks (one reference each) and clear its block table."""

    @abstractmethod
    def fork(self, parent: Sequence, child: Sequence) -> None:
        """Make `child` share all of `parent`'s blocks (copy on write later)."""

    @abstractmethod
    def take_copies(self) -> list[tuple[int, int]]:
        """Return and clear the queued copy-on-write block copies `(src, dst)`."""

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)
