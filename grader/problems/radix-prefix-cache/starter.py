from engine.block_allocator import BlockAllocator
from engine.sequence import Sequence


class RadixPrefixCache(BlockAllocator):
    """A radix tree over token ids whose nodes hold full KV blocks; LRU eviction of leaves."""

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        super().__init__(num_blocks, block_size, enable_prefix_caching)

    @property
    def num_free_blocks(self) -> int:
        raise NotImplementedError

    def allocate_prefix(self, seq: Sequence) -> int:
        raise NotImplementedError

    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        raise NotImplementedError

    def cache_full_blocks(self, seq: Sequence) -> None:
        raise NotImplementedError

    def free(self, seq: Sequence) -> None:
        raise NotImplementedError

    def fork(self, parent: Sequence, child: Sequence) -> None:
        raise NotImplementedError  # never called in this problem

    def take_copies(self) -> list[tuple[int, int]]:
        return []  # nothing to copy without fork
