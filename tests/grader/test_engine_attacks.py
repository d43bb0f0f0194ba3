"""Hostile submissions to the engine-plugged problems whose engine runs on the trusted side
(priority-scheduler, kv-allocator, radix-prefix-cache, slo-scheduler), graded through ``grade()`` as the worker does.

Each attack is a submission built from the problem's own files plus a few lines of attack,
with the verdict it deserves: a forged report gets wrong_answer for a wrong class whatever it
says; forged figures and times change nothing; the engine's own implementations cannot be
imported; a scheduler that changes state it must not gets wrong_answer naming the step; a
hostile message is a policy verdict. The same submissions were accepted (or got through)
when the sandbox ran the engine and reported its run (the grader before ``allocator/2`` and
``scheduler/2``).
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from grader.bank import PROBLEMS_DIR
from grader.grading import grade
from grader.harnesses.contract import Verdict
from tests.grader.test_engine_problems import _grade, spec_of

SCHEDULER = PROBLEMS_DIR / "priority-scheduler"
ALLOCATOR = PROBLEMS_DIR / "kv-allocator"
PREFIX_CACHE = PROBLEMS_DIR / "radix-prefix-cache"
SLO_SCHEDULER = PROBLEMS_DIR / "slo-scheduler"

# Replaces the harness's serve at import: every request is answered with a report made by
# other code. Where the engine's implementations can be imported (the old sandbox), the
# report is a real run of a correct policy hidden in the module, never of the submitted
# class; else a made-up one.
FORGED_SCHEDULER_REPORT = """
import time

import grader.harnesses.engine_scheduler as _harness


def _forged_serve(entry, request, shared):
    try:
        from grader.harnesses.engine_run import drive, tiny_engine
        from grader.harnesses.engine_scheduler import _recorder

        trace = []
        engine = tiny_engine(request["config"], scheduler_cls=_Hidden)
        clock = time.perf_counter_ns
        run = drive(engine, request["requests"], request["max_steps"], clock, _recorder(trace))
        return {"ok": True, **run, "trace": trace}
    except (ImportError, KeyError):
        return {"ok": True, "elapsed_ns": 1, "steps": 0, "trace": [], "outputs": {}}


_harness.SchedulerHarness.serve = staticmethod(_forged_serve)
"""
FORGED_ALLOCATOR_REPORT = """
import grader.harnesses.engine_allocator as _harness

_honest_serve = _harness.AllocatorHarness.serve


def _forged_serve(entry, request, shared):
    try:
        from engine.block_allocator import PrefixCachingAllocator as right
    except ImportError:
        return {"ok": True, "elapsed_ns": 1, "results": [], "outputs": {}}
    right.__qualname__ = "PagedAllocator"  # past the old check of the class's name
    return _honest_serve(right, request, shared)


_harness.AllocatorHarness.serve = staticmethod(_forged_serve)
"""
# Wraps the honest serve and boasts: better figures, more prefix hits, a short time.
FORGED_FIGURES = """
import grader.harnesses.{module} as _harness

_honest_serve = _harness.{harness}.serve


def _boasting_serve(entry, request, shared):
    reply = _honest_serve(entry, request, shared)
    for output in reply.get("outputs", {{}}).values():
        output["cached_tokens"] = 10**6
    boast = {{
        "output_tokens_per_step": 99.0,
        "p99_ttft_steps_priority_0": 0.0,
        "fitted": 999,
        "goodput": 999,
        "steps": 1,
    }}
    return reply | boast | {{"figures": boast, "time_ns": 1}}


_harness.{harness}.serve = staticmethod(_boasting_serve)
"""
RENAMED_ENGINE_SCHEDULER = """
try:
    from engine.schedulers import PriorityScheduler as PriorityPreemptScheduler
except ImportError:
    from engine.scheduler import PriorityScheduler as PriorityPreemptScheduler

for cls in PriorityPreemptScheduler.__mro__:
    if cls.__module__.startswith("engine."):
        cls.__qualname__, cls.__module__ = "Mine", "solution"
"""
RENAMED_ENGINE_ALLOCATOR = """
try:
    from engine.prefix_caching_allocator import PrefixCachingAllocator as PagedAllocator
except ImportError:
    from engine.block_allocator import PrefixCachingAllocator as PagedAllocator

PagedAllocator.__qualname__, PagedAllocator.__module__ = "PagedAllocator", "solution"
"""
# The prefix cache's attacks: the engine's own allocator under the problem's name, and hits
# claimed on blocks that hold nothing (cheats/fake_prefix_hits.py).
RENAMED_ENGINE_PREFIX_CACHE = RENAMED_ENGINE_ALLOCATOR.replace("PagedAllocator", "RadixPrefixCache")
# The trusted side's checks and figures, as the sandbox can import them (grader/harnesses and
# engine/slo.py are bound there), replaced to pass everything: the copies the trusted side
# uses live in the worker, out of reach.
PATCHES_THE_CHECKS = """

import importlib

for _module, _cls, _names, _answer in (
    ("grader.harnesses.engine_allocator", "CacheModel", ("prefix", "append", "write"), None),
    ("grader.harnesses.engine_allocator", "CacheModel", ("free", "fork", "check_free"), None),
    ("grader.harnesses.allocator_link", "AllocatorProxy", ("_check",), None),
    ("grader.harnesses.engine_scheduler", "ScheduleJudge", ("step",), None),
    ("grader.harnesses.scheduler_link", "SchedulerProxy", ("_set_computed", "_accept"), None),
    ("engine.slo", "SLO", ("met",), True),
):
    try:
        _target = getattr(importlib.import_module(_module), _cls)
    except ImportError:
        continue  # not bound in this problem's sandbox
    for _name in _names:
        setattr(_target, _name, lambda *args, _answer=_answer, **kwargs: _answer)
"""
# The reference scheduler, changed in one place each.
COMPUTED_PAST_PROGRESS = '''

class PriorityPreemptScheduler(PriorityPreemptScheduler):
    """Claims every admitted prompt is cached but its last token: the prefill is skipped."""

    def admit(self, seq, budget):
        self.allocator.allocate_prefix(seq)
        seq.num_computed_tokens = seq.num_cached_tokens = seq.num_tokens - 1
        if not self.allocator.append_slots(seq, 1):
            self.allocator.free(seq)
            seq.num_computed_tokens = seq.num_cached_tokens = 0
            return 0
        seq.status = Status.RUNNING
        self.running.append(seq)
        return 1
'''
SCHEDULES_FINISHED = '''

class PriorityPreemptScheduler(PriorityPreemptScheduler):
    """Frees a finished request's blocks but keeps it running, and schedules it again."""

    def finish(self, seq):
        self.allocator.free(seq)
'''
KEEPS_BLOCKS_ON_PREEMPT = '''

class PriorityPreemptScheduler(PriorityPreemptScheduler):
    """Preempts by recompute but keeps the victim's blocks."""

    def preempt(self, seq):
        self.running.remove(seq)
        seq.status = Status.WAITING
        seq.num_computed_tokens = 0
        self.num_preemptions += 1
        self.waiting.appendleft(seq)
'''
# Messages the trusted side must refuse to read.
GARBAGE_MESSAGE = """
import struct
import time

import grader.harnesses.engine_scheduler as _harness


def _garbage_serve(entry, request, shared):
    _harness.SchedulerHarness.channel.sendall(struct.pack("!I", 12) + b"\\x00not json\\xff\\xfe!")
    time.sleep(30)


_harness.SchedulerHarness.serve = staticmethod(_garbage_serve)
"""
HUGE_QUESTION = """
import grader.harnesses.engine_scheduler as _harness
from grader.harnesses.channel import message_receive, message_send


def _huge_serve(entry, request, shared):
    message_send(_harness.SchedulerHarness.channel, {"ok": True, "ask": "x" * (2 << 20)})
    return message_receive(_harness.SchedulerHarness.channel)


_harness.SchedulerHarness.serve = staticmethod(_huge_serve)
"""
# Work done while the trusted engine runs the model, between the exchanges whose time
# counts: a helper process that the scheduler starts, busy all along. The sandbox is frozen
# between exchanges, so the helper only ever runs inside them.
HIDDEN_WORK = """
import os


class PriorityPreemptScheduler(PriorityPreemptScheduler):
    helper = None

    def schedule(self):
        if PriorityPreemptScheduler.helper is None:
            PriorityPreemptScheduler.helper = os.fork()
            while PriorityPreemptScheduler.helper == 0:
                sum(range(10_000))
        return super().schedule()
"""
# A correct scheduler that makes a legal, wasteful decision at one step: it preempts its best
# running request by recompute, then (the reference's own loop) re-admits it in the same
# schedule() call, with a fresh prefill of all its tokens, chunked when they exceed the budget.
READMITS_IN_THE_SAME_STEP = """

class PriorityPreemptScheduler(PriorityPreemptScheduler):
    decisions = 0

    def schedule(self):
        if self.decisions == {step} and self.running:
            self.preempt(min(self.running, key=self.rank))
        self.decisions += 1
        return super().schedule()
"""


def _file(folder, name: str) -> str:
    return (folder / name).read_text()


def _hidden_reference() -> str:
    """The reference scheduler under another name, beside the submitted wrong class."""
    return _file(SCHEDULER, "reference.py").replace(
        "class PriorityPreemptScheduler(", "class _Hidden("
    )


ATTACKS = {
    "scheduler-forged-report": (
        "priority-scheduler",
        lambda: (
            _file(SCHEDULER, "wrong/fcfs_ignores_priority.py")
            + _hidden_reference()
            + FORGED_SCHEDULER_REPORT
        ),
        Verdict.WRONG_ANSWER,
        "the scheduler's answer has no plan",
    ),
    "allocator-forged-report": (
        "kv-allocator",
        lambda: _file(ALLOCATOR, "wrong/no_copy_on_write.py") + FORGED_ALLOCATOR_REPORT,
        Verdict.WRONG_ANSWER,
        "the allocator's answer None is not allocate_prefix's result",
    ),
    "scheduler-engine-class-renamed": (
        "priority-scheduler",
        lambda: RENAMED_ENGINE_SCHEDULER,
        Verdict.RUNTIME_ERROR,
        "ImportError: cannot import name 'PriorityScheduler' from 'engine.scheduler'",
    ),
    "allocator-engine-class-renamed": (
        "kv-allocator",
        lambda: RENAMED_ENGINE_ALLOCATOR,
        Verdict.RUNTIME_ERROR,
        "ImportError: cannot import name 'PrefixCachingAllocator' from 'engine.block_allocator'",
    ),
    "prefix-cache-fake-hits": (
        "radix-prefix-cache",
        lambda: _file(PREFIX_CACHE, "cheats/fake_prefix_hits.py"),
        Verdict.WRONG_ANSWER,
        "but that block holds other tokens",
    ),
    "prefix-cache-engine-class-renamed": (
        "radix-prefix-cache",
        lambda: RENAMED_ENGINE_PREFIX_CACHE,
        Verdict.RUNTIME_ERROR,
        "ImportError: cannot import name 'PrefixCachingAllocator' from 'engine.block_allocator'",
    ),
    "prefix-cache-fake-hits-past-patched-checks": (
        "radix-prefix-cache",
        lambda: _file(PREFIX_CACHE, "cheats/fake_prefix_hits.py") + PATCHES_THE_CHECKS,
        Verdict.WRONG_ANSWER,
        "but that block holds other tokens",
    ),
    "slo-claims-prompts-cached-past-patched-checks": (
        "slo-scheduler",
        lambda: _file(SLO_SCHEDULER, "cheats/claims_prompt_cached.py") + PATCHES_THE_CHECKS,
        Verdict.WRONG_ANSWER,
        "has num_computed_tokens",
    ),
    "slo-claims-prompts-cached": (
        "slo-scheduler",
        lambda: _file(SLO_SCHEDULER, "cheats/claims_prompt_cached.py"),
        Verdict.WRONG_ANSWER,
        "has num_computed_tokens",
    ),
    "slo-engine-class-renamed": (
        "slo-scheduler",
        lambda: RENAMED_ENGINE_SCHEDULER.replace("PriorityPreemptScheduler", "GoodputScheduler"),
        Verdict.RUNTIME_ERROR,
        "ImportError: cannot import name 'PriorityScheduler' from 'engine.scheduler'",
    ),
    "computed-past-progress": (
        "priority-scheduler",
        lambda: _file(SCHEDULER, "reference.py") + COMPUTED_PAST_PROGRESS,
        Verdict.WRONG_ANSWER,
        "has num_computed_tokens",
    ),
    "schedules-finished-request": (
        "priority-scheduler",
        lambda: _file(SCHEDULER, "reference.py") + SCHEDULES_FINISHED,
        Verdict.WRONG_ANSWER,
        "which finished at step",
    ),
    "keeps-blocks-on-preempt": (
        "priority-scheduler",
        lambda: _file(SCHEDULER, "reference.py") + KEEPS_BLOCKS_ON_PREEMPT,
        Verdict.WRONG_ANSWER,
        "is waiting but still holds",
    ),
    "garbage-message": (
        "priority-scheduler",
        lambda: _file(SCHEDULER, "reference.py") + GARBAGE_MESSAGE,
        Verdict.POLICY,
        "the message is not JSON",
    ),
    "huge-question": (
        "priority-scheduler",
        lambda: _file(SCHEDULER, "reference.py") + HUGE_QUESTION,
        Verdict.POLICY,
        "exceeds the 1048576 limit",
    ),
}

STATE_CHANGES = (
    "computed-past-progress",
    "schedules-finished-request",
    "keeps-blocks-on-preempt",
    "slo-claims-prompts-cached",
    "slo-claims-prompts-cached-past-patched-checks",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_gets_its_verdict(name: str) -> None:
    slug, source, verdict, words = ATTACKS[name]
    report = _grade(slug, source())
    assert report.verdict is verdict, report.message
    assert words in report.message
    if name in STATE_CHANGES:  # "<test>: step N: ...": the step the rule was broken at
        assert re.match(r"[a-z0-9-]+: step \d+: ", report.message), report.message


SCORED_TESTS = {
    "priority-scheduler": ["score-vs-reference"],
    "kv-allocator": ["engine-shared-prefix", "capacity-vs-reference"],
    "radix-prefix-cache": ["system-prompts-under-pressure", "multi-turn-chat"],
    "slo-scheduler": ["bursty-score-vs-reference"],
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slug", "module", "harness"),
    [
        ("priority-scheduler", "engine_scheduler", "SchedulerHarness"),
        ("kv-allocator", "engine_allocator", "AllocatorHarness"),
        ("radix-prefix-cache", "engine_prefix_cache", "PrefixCacheHarness"),
        ("slo-scheduler", "engine_slo_scheduler", "SLOSchedulerHarness"),
    ],
)
def test_forged_figures_and_times_change_nothing(slug: str, module: str, harness: str) -> None:
    reference = (PROBLEMS_DIR / slug / "reference.py").read_text()
    # the scored tests alone: the figures a boast could move are theirs (and the times)
    spec = spec_of(slug)
    spec = dataclasses.replace(
        spec, tests=[case for case in spec.tests if case["name"] in SCORED_TESTS[slug]]
    )
    honest = grade(spec, reference, seed=23, hardware={})
    forged = reference + FORGED_FIGURES.format(module=module, harness=harness)
    boasting = grade(spec, forged, seed=23, hardware={})
    assert honest.verdict is boasting.verdict is Verdict.ACCEPTED, boasting.message
    assert boasting.policy == honest.policy and boasting.score == honest.score == 1.0
    scored = {t.name: t for t in honest.tests if t.name in SCORED_TESTS[slug]}
    for test in boasting.tests:
        if test.name in scored:
            assert (test.message, test.details) == (
                scored[test.name].message,
                scored[test.name].details,
            )
    # the time is the trusted clock around each exchange, never what the sandbox said
    for measured in (boasting.candidate, boasting.reference):
        assert min(measured.samples_ns) > 1_000_000


# (the newer problems' two grades of one seed are test_forged_figures_and_times_change_nothing's)
@pytest.mark.slow
@pytest.mark.parametrize("slug", ["priority-scheduler", "kv-allocator"])
def test_the_same_policy_scores_the_same_in_every_grade(slug: str) -> None:
    """Two grades of one submission (one seed): the same policy score and figures, exactly,
    whatever the host's load did to the wall times in between."""
    code = (PROBLEMS_DIR / slug / "reference.py").read_text()
    first, second = _grade(slug, code, seed=31), _grade(slug, code, seed=31)
    assert first.policy is not None and first.policy == second.policy
    assert first.score == second.score


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["scheduler-engine-class-renamed", "allocator-engine-class-renamed"]
)
def test_without_bubblewrap_the_engine_classes_are_out_of_reach_too(name: str, monkeypatch) -> None:
    """The fallback imports a copy of the sandbox's paths; the project's editable install must
    not hand it the rest of the engine."""
    import grader.grading
    import grader.sandbox
    from grader.harnesses.contract import SandboxKind

    for module in (grader.grading, grader.sandbox):
        monkeypatch.setattr(module, "sandbox_kind", lambda: SandboxKind.UNSANDBOXED)
    slug, source, verdict, words = ATTACKS[name]
    report = _grade(slug, source())
    assert report.sandbox is SandboxKind.UNSANDBOXED
    assert report.verdict is verdict and words in report.message, report.message


class _Session:
    """Enough of a sandbox session to watch what a link does to it between exchanges."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def call(self, message, timeout_s):
        self.log.append("call")
        return {"ok": True}, 1_000

    def freeze(self) -> None:
        self.log.append("freeze")


def test_the_sandbox_is_frozen_between_decisions() -> None:
    """Nothing of the sandbox runs while the trusted engine computes: a helper it started
    (``HIDDEN_WORK``) can only work inside the exchanges, which the trusted clock times."""
    from grader.harnesses.engine_run import Link

    session = _Session()
    link = Link(session, timeout_s=5.0)
    link.call({"op": "schedule"})
    link.call({"op": "schedule"})
    assert session.log == ["call", "freeze", "call", "freeze"]
    assert link.timing().outside_ns == 2_000


@pytest.mark.slow
def test_a_helper_busy_between_decisions_changes_no_verdict_or_score() -> None:
    report = _grade("priority-scheduler", _file(SCHEDULER, "reference.py") + HIDDEN_WORK)
    assert report.verdict is Verdict.ACCEPTED, report.message
    assert report.score == 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompt", "budget", "step", "steps_lost"),
    [
        # decoding at step 3: its 12 + 3 tokens fit the budget, and the step still yields
        # the next token, as a decode would have
        pytest.param(12, 48, 3, 0, id="whole-prefill"),
        # step 1 computes again the 16-token chunk of step 0, which the engine's progress
        # brings back to the value it had before the step
        pytest.param(40, 16, 1, 1, id="chunked-prefill"),
    ],
)
def test_a_request_preempted_and_readmitted_in_one_step_is_judged_right(
    prompt: int, budget: int, step: int, steps_lost: int
) -> None:
    """Preemption by recompute and re-admission in one ``schedule()`` is legal; the trusted
    side must follow it (it once judged the next step on the request's old progress, a
    wrong answer for a correct scheduler). One request, so every figure is the reference's
    but the one preemption and the steps it costs."""
    shape = {
        "requests": 1,
        "prompt": [prompt, prompt],
        "max_tokens": [6, 6],
        "priorities": [0],
        "block_size": 8,
        "num_kv_blocks": 24,
        "max_num_seqs": 8,
        "max_num_batched_tokens": budget,
    }
    spec = spec_of("priority-scheduler")
    spec = dataclasses.replace(
        spec,
        tests=[{"name": "one-request", "score": True, **shape}],
        benchmark=spec.benchmark | shape,
    )
    code = _file(SCHEDULER, "reference.py") + READMITS_IN_THE_SAME_STEP.format(step=step)
    report = grade(spec, code, seed=5, hardware={})
    assert report.verdict is Verdict.ACCEPTED, report.message
    mine, reference = report.policy.figures, report.policy.reference
    assert mine["preemptions"] == reference["preemptions"] + 1 == 1
    assert mine["steps"] == reference["steps"] + steps_lost
    assert mine["p99_ttft_steps_urgent"] == reference["p99_ttft_steps_urgent"] + steps_lost
