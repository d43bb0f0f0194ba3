"""tp-mlp: the candidate's tensor-parallel MLP on two ranks (gloo over the sandbox's own
loopback) against the single-device MLP, and the attack on the split of the work.

The reference is accepted with a score; each wrong solution gets a wrong answer naming the
rank and how far its output is; the cheat that computes everything on rank 0 is refused by
the CPU time each rank's process used, read from outside the sandbox. The sandbox keeps its
own empty network namespace: two ranks talk over its loopback, and nothing else answers.
"""

from __future__ import annotations

import pytest

from grader.bank import PROBLEMS_DIR, problem_read
from grader.harnesses.contract import Verdict
from grader.yaml_text import yaml_load
from tests.grader.test_engine_problems import _grade, spec_of

SLUG = "tp-mlp"
# (solution, verdict, words of the first failing test's message)
CASES = [
    ("reference.py", Verdict.ACCEPTED, ""),
    ("wrong/no_all_reduce.py", Verdict.WRONG_ANSWER, "differs from the single-device MLP"),
    ("wrong/all_reduce_before_down.py", Verdict.WRONG_ANSWER, "rank 0's output differs"),
    ("wrong/fused_gate_up_split_in_half.py", Verdict.WRONG_ANSWER, "rank 0's output differs"),
    # right outputs, every one: rank 1 idles while rank 0 computes the whole MLP
    (
        "cheats/rank0_computes_all.py",
        Verdict.POLICY,
        "each rank must compute its own shard",
    ),
    ("starter.py", Verdict.RUNTIME_ERROR, "NotImplementedError"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("solution", "verdict", "words"), CASES, ids=[c[0] for c in CASES])
def test_solution_gets_its_verdict(solution: str, verdict: Verdict, words: str) -> None:
    report = _grade(SLUG, (PROBLEMS_DIR / SLUG / solution).read_text())
    assert report.verdict is verdict, report.message
    if verdict is Verdict.ACCEPTED:
        assert all(test.verdict is Verdict.ACCEPTED for test in report.tests)
        assert report.score > 0
        (balance,) = [test for test in report.tests if test.name == "balance"]
        details = balance.details
        # not vacuous: the split was judged on enough CPU time, about half each
        assert details["rank0_cpu_ticks"] + details["other_ranks_cpu_ticks"] >= 15
        assert 0 < details["allreduce_share"] and "an all-reduce of its output" in balance.message
    else:
        assert words in report.message
        assert report.score == 0.0


def test_problem_folder_is_complete() -> None:
    folder = PROBLEMS_DIR / SLUG
    problem = problem_read(folder)
    shipped = {f"{p.parent.name}/{p.name}" for p in folder.glob("*/*.py")}
    assert shipped == {solution for solution, _, _ in CASES} - {"reference.py", "starter.py"}
    for section in ("## The interface", "## A worked example", "## Score"):
        assert section in problem.statement_md
    meta = yaml_load((folder / "problem.yaml").read_text())
    assert meta["difficulty"] in ("easy", "medium", "hard")
    assert (folder / "editorial.md").read_text().startswith("### The idea")
    assert spec_of(SLUG).harness == "tensor_parallel"


# A solution that reports, as its import error, what network its sandbox has: its interfaces,
# and whether the host's loopback (a server this test listens on) and an outside address answer.
NETWORK_PROBE = """
import socket

def _try(address):
    try:
        socket.create_connection(address, timeout=2).close()
        return "connected"
    except OSError as error:
        return type(error).__name__

names = sorted(name for _, name in socket.if_nameindex())
raise RuntimeError(f"interfaces {names}; host loopback {_try(('127.0.0.1', PORT))}; "
                   f"outside {_try(('1.1.1.1', 53))}")
"""


@pytest.mark.parametrize("slug", [SLUG, "cpu-softmax"])
def test_the_two_ranks_loopback_is_the_sandboxs_own(slug: str) -> None:
    """tp-mlp's ranks talk over loopback inside the sandbox's own network namespace, the same
    profile as every other problem's: neither sees the host's loopback or anything outside."""
    import dataclasses
    import socket

    from grader.grading import grade
    from grader.sandbox import sandbox_kind

    with socket.create_server(("127.0.0.1", 0)) as server:
        code = NETWORK_PROBE.replace("PORT", str(server.getsockname()[1]))
        spec = problem_read(PROBLEMS_DIR / slug).as_spec()
        report = grade(dataclasses.replace(spec, tests=spec.tests[:1]), code, seed=1, hardware={})
    assert report.verdict is Verdict.RUNTIME_ERROR
    assert str(sandbox_kind()) == "bubblewrap"
    assert "interfaces ['lo']; host loopback ConnectionRefusedError; outside OSError" in (
        report.message
    ), report.message


def test_listed_with_its_page(user) -> None:
    from django.test import Client

    from grader.bank import problems_load

    problems_load()
    browser = Client()
    browser.force_login(user)
    assert f"/problems/{SLUG}/" in browser.get("/problems/").content.decode()
    page = browser.get(f"/problems/{SLUG}/")
    assert page.status_code == 200
    assert "The interface" in page.content.decode()
