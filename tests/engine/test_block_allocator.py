"""The reference allocator: prefix hits by chained hash, all-or-nothing growth, refs, CoW."""

from __future__ import annotations

from engine.prefix_caching_allocator import PrefixCachingAllocator
from engine.sequence import Sequence


def computed(alloc: PrefixCachingAllocator, seq: Sequence) -> Sequence:
    """Admit `seq`, give it slots for all its tokens, mark them computed and cached."""
    seq.num_computed_tokens = alloc.allocate_prefix(seq)
    assert alloc.append_slots(seq, seq.num_tokens - seq.num_computed_tokens)
    seq.num_computed_tokens = seq.num_tokens
    alloc.cache_full_blocks(seq)
    return seq


def test_docstring_example():
    alloc = PrefixCachingAllocator(num_blocks=8, block_size=4)
    a = Sequence(list(range(10)))
    assert alloc.allocate_prefix(a) == 0
    assert alloc.append_slots(a, 10)
    assert a.block_table == [0, 1, 2]
    a.num_computed_tokens = 10
    alloc.cache_full_blocks(a)
    b = Sequence(list(range(8)) + [99])
    assert alloc.allocate_prefix(b) == 8
    assert b.block_table == [0, 1]
    assert alloc.num_free_blocks == 5


def test_last_prompt_token_is_never_a_hit():
    alloc = PrefixCachingAllocator(num_blocks=8, block_size=4)
    computed(alloc, Sequence(list(range(8))))
    twin = Sequence(list(range(8)))
    assert alloc.allocate_prefix(twin) == 4


def test_hash_is_chained_so_a_later_block_needs_its_whole_prefix():
    alloc = PrefixCachingAllocator(num_blocks=8, block_size=2)
    computed(alloc, Sequence([1, 2, 3, 4, 5]))
    assert alloc.allocate_prefix(Sequence([9, 9, 3, 4, 5])) == 0


def test_append_slots_is_all_or_nothing():
    alloc = PrefixCachingAllocator(num_blocks=3, block_size=4)
    seq = Sequence(list(range(20)))
    assert not alloc.append_slots(seq, 20)
    assert seq.block_table == [] and alloc.num_free_blocks == 3
    assert alloc.append_slots(seq, 12)
    assert alloc.num_free_blocks == 0


def test_free_keeps_cached_blocks_until_evicted_least_recent_first():
    alloc = PrefixCachingAllocator(num_blocks=4, block_size=2)
    a = computed(alloc, Sequence([1, 2, 3, 4, 5]))
    alloc.free(a)
    assert alloc.num_free_blocks == 4 and a.block_table == []
    assert alloc.allocate_prefix(Sequence([1, 2, 3, 4, 6])) == 4
    fresh = Sequence([7, 7, 7, 7, 7, 7, 7])
    assert alloc.append_slots(fresh, 7) is False
    other = Sequence([8, 8, 8])
    assert alloc.append_slots(other, 3)
    assert alloc.allocate_prefix(Sequence([1, 2, 3, 4, 9])) == 4


def test_eviction_forgets_the_hash():
    alloc = PrefixCachingAllocator(num_blocks=2, block_size=2)
    a = computed(alloc, Sequence([1, 2, 3]))
    alloc.free(a)
    filler = Sequence([5, 6, 7, 8])
    assert alloc.append_slots(filler, 4)
    assert alloc.allocate_prefix(Sequence([1, 2, 3])) == 0


def test_reference_counts_share_blocks_between_hits():
    alloc = PrefixCachingAllocator(num_blocks=6, block_size=2)
    a = computed(alloc, Sequence([1, 2, 3, 4, 5]))
    b = Sequence([1, 2, 3, 4, 6])
    alloc.allocate_prefix(b)
    assert b.block_table == a.block_table[:2]
    assert [alloc.ref_counts[i] for i in a.block_table] == [2, 2, 1]
    alloc.free(a)
    assert [alloc.ref_counts[i] for i in b.block_table] == [1, 1]
    assert alloc.num_free_blocks == 4


def test_fork_shares_blocks_and_copies_on_write():
    alloc = PrefixCachingAllocator(num_blocks=8, block_size=4)
    parent = computed(alloc, Sequence([1, 2, 3, 4, 5, 6]))
    child = Sequence([1, 2, 3, 4, 5, 6])
    alloc.fork(parent, child)
    assert child.block_table == parent.block_table and child.num_computed_tokens == 6
    assert alloc.ref_counts[parent.block_table[1]] == 2
    child.token_ids.append(7)
    assert alloc.append_slots(child, 1)
    shared, fresh = parent.block_table[1], child.block_table[1]
    assert fresh != shared and child.block_table[0] == parent.block_table[0]
    assert alloc.take_copies() == [(shared, fresh)]
    assert alloc.take_copies() == []
    assert alloc.ref_counts[shared] == 1 and alloc.ref_counts[fresh] == 1


def test_no_prefix_caching_means_no_hits():
    alloc = PrefixCachingAllocator(num_blocks=8, block_size=2, enable_prefix_caching=False)
    computed(alloc, Sequence([1, 2, 3, 4, 5]))
    assert alloc.allocate_prefix(Sequence([1, 2, 3, 4, 5])) == 0
