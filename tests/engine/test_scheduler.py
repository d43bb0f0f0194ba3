"""Reference schedulers: vLLM v1's token rule, budget, chunking, preemption, priority, static."""

from __future__ import annotations

from engine.prefix_caching_allocator import PrefixCachingAllocator
from engine.schedulers import FCFSScheduler, PriorityScheduler, StaticScheduler
from engine.sequence import Sequence, Status


def run_step(scheduler, sampled: int = 42):
    """Apply a plan the way the engine does: advance computed counts, sample at the end."""
    out = scheduler.schedule()
    for seq, num_new in out.scheduled:
        seq.num_computed_tokens += num_new
        if seq.num_computed_tokens == seq.num_tokens:
            seq.token_ids.append(sampled)
    return out


def test_docstring_example_chunks_the_second_prompt():
    alloc = PrefixCachingAllocator(num_blocks=16, block_size=4)
    scheduler = FCFSScheduler(alloc, max_num_seqs=2, max_num_batched_tokens=8)
    a, b = Sequence([1, 2, 3, 4, 5, 6]), Sequence([7, 8, 9, 10, 11])
    scheduler.add(a)
    scheduler.add(b)
    out = scheduler.schedule()
    assert [(s.seq_id, n) for s, n in out.scheduled] == [(a.seq_id, 6), (b.seq_id, 2)]


def test_one_rule_covers_prefill_chunks_and_decode():
    alloc = PrefixCachingAllocator(num_blocks=16, block_size=4)
    scheduler = FCFSScheduler(alloc, max_num_seqs=4, max_num_batched_tokens=8)
    a, b = Sequence(list(range(6))), Sequence(list(range(100, 110)))
    scheduler.add(a)
    scheduler.add(b)
    plans = [[(s is a, n) for s, n in run_step(scheduler).scheduled] for _ in range(3)]
    assert plans == [[(True, 6), (False, 2)], [(True, 1), (False, 7)], [(True, 1), (False, 1)]]
    assert b.num_computed_tokens == 10 and b.num_output_tokens == 1


def test_token_budget_and_seat_limit_hold():
    alloc = PrefixCachingAllocator(num_blocks=64, block_size=4)
    scheduler = FCFSScheduler(alloc, max_num_seqs=3, max_num_batched_tokens=10)
    for i in range(5):
        scheduler.add(Sequence(list(range(i * 10, i * 10 + 7))))
    # Bounds from both sides: a scheduler that schedules nothing holds every upper bound.
    first = run_step(scheduler)
    assert first.num_tokens == 10, "35 prompt tokens wait: the first step fills the budget"
    for _ in range(5):
        out = run_step(scheduler)
        assert 0 < out.num_tokens <= 10
        assert len(scheduler.running) == 3, "five wait for three seats: every seat is used"


def test_preempts_the_latest_by_recompute_when_blocks_run_out():
    alloc = PrefixCachingAllocator(num_blocks=4, block_size=2, enable_prefix_caching=False)
    scheduler = FCFSScheduler(alloc, max_num_seqs=4, max_num_batched_tokens=64)
    a, b = Sequence([1, 2, 3, 4]), Sequence([5, 6, 7, 8])
    scheduler.add(a)
    scheduler.add(b)
    run_step(scheduler)
    assert alloc.num_free_blocks == 0
    out = run_step(scheduler)
    assert out.preempted == [b] and [s for s, _ in out.scheduled] == [a]
    assert b.status is Status.WAITING and b.num_computed_tokens == 0 and b.block_table == []
    assert b.token_ids == [5, 6, 7, 8, 42] and scheduler.waiting[0] is b
    assert scheduler.num_preemptions == 1


def test_prefix_hit_starts_past_the_cached_blocks():
    alloc = PrefixCachingAllocator(num_blocks=16, block_size=4)
    scheduler = FCFSScheduler(alloc, max_num_seqs=4, max_num_batched_tokens=64)
    a = Sequence(list(range(10)))
    scheduler.add(a)
    run_step(scheduler)
    alloc.cache_full_blocks(a)
    b = Sequence(list(range(9)) + [77])
    scheduler.add(b)
    out = run_step(scheduler)
    assert (b, 2) in out.scheduled and b.num_cached_tokens == 8


def test_priority_burst_preempts_worse_running_requests():
    alloc = PrefixCachingAllocator(num_blocks=6, block_size=4, enable_prefix_caching=False)
    scheduler = PriorityScheduler(alloc, max_num_seqs=2, max_num_batched_tokens=64)
    low = [Sequence(list(range(8)), priority=1, arrival_time=t) for t in (0.0, 1.0)]
    for seq in low:
        scheduler.add(seq)
    run_step(scheduler)
    urgent = Sequence(list(range(50, 58)), priority=0, arrival_time=2.0)
    scheduler.add(urgent)
    out = run_step(scheduler)
    assert out.preempted == [low[1]]
    assert urgent.status is Status.RUNNING and (urgent, 8) in out.scheduled
    assert low[0].status is Status.RUNNING


def test_static_batch_waits_for_the_whole_batch():
    alloc = PrefixCachingAllocator(num_blocks=64, block_size=4)
    scheduler = StaticScheduler(alloc, max_num_seqs=2, max_num_batched_tokens=64)
    seqs = [Sequence([1, 2, 3]), Sequence([4, 5]), Sequence([6])]
    for seq in seqs:
        scheduler.add(seq)
    out = run_step(scheduler)
    assert [s for s, _ in out.scheduled] == seqs[:2]
    scheduler.finish(seqs[0])
    out = run_step(scheduler)
    assert [s for s, _ in out.scheduled] == [seqs[1]]
    scheduler.finish(seqs[1])
    out = run_step(scheduler)
    assert [s for s, _ in out.scheduled] == [seqs[2]]
