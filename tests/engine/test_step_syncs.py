"""A step waits for the device at most once: the reads of device values per step, counted.

On a card every host read of a device tensor (`.tolist()`, `.item()`, `bool(t)`, `.cpu()`,
`t.nonzero()`, ...) blocks until the GPU has caught up. Without async scheduling nothing
hides that wait, so a read added to the step path costs every step its whole queue (the
refactor of issue 23 was suspected of this: its sync steps measured 0.5-0.7 ms slower on an
H200). These tests run the tiny model on the CPU and mark what the model runner returns as
device values (a tensor subclass that every op on them propagates), then count reads of
anything computed from them. A count, not a timing: the same on any machine.
"""

from __future__ import annotations

import torch

from engine.workloads import make_workload
from tests.engine.conftest import make_engine

# Tensor methods that, on a device tensor, copy to the host and wait for the device.
READS = {
    torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__int__,
    torch.Tensor.__float__, torch.Tensor.__index__, torch.Tensor.cpu, torch.Tensor.numpy,
    torch.Tensor.nonzero, torch.nonzero,
}  # fmt: skip


class OnDevice(torch.Tensor):
    """A value that lives on the accelerator on a card; ops on it return `OnDevice` too."""

    reads: list[str] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        to_host = func in (torch.Tensor.to, torch.Tensor.copy_) and any(
            str(a) == "cpu" or isinstance(a, torch.Tensor) and not isinstance(a, OnDevice)
            for a in (*args[1:], *kwargs.values())
        )
        if func in READS or to_host:
            cls.reads.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs)


def reads_per_step(engine, requests) -> list[list[str]]:
    """Serve `requests`; the device reads each step made, one list per step."""
    run = engine.runner.run

    def on_device(*args, **kwargs):
        logits, sampled = run(*args, **kwargs)
        return logits.as_subclass(OnDevice), sampled

    engine.runner.run = on_device
    for r in requests:
        engine.add_request(r.prompt_token_ids, r.params)
    steps = []
    while engine.has_unfinished():
        OnDevice.reads = []
        engine.step()
        steps.append(OnDevice.reads)
    return steps


def test_sync_step_reads_the_device_once(tiny_hf):
    """A sync step must learn its sampled tokens before it can append them, check the stop
    rule and schedule the next step: one read of the `[B]` tokens, `.tolist()` once for the
    whole batch. Everything else it needs (the sampling settings' flags, the stop rule, the
    trace) is on the host, so no step reads more, and every step that ran the model read them.
    """
    engine = make_engine(tiny_hf)
    requests = make_workload("offline-mixed", 24, 0, 0.05)
    steps = reads_per_step(engine, requests)
    assert len(steps) > 10
    assert all(reads == ["tolist"] for reads in steps), steps


def test_async_step_reads_the_device_at_most_once(tiny_hf):
    """With async scheduling a step launches its own sampling and reads the previous step's
    tokens (on a card from a pinned copy made after an event, so the wait is for that step
    only): at most one read per step as well."""
    engine = make_engine(tiny_hf, async_scheduling=True)
    requests = make_workload("offline-mixed", 24, 0, 0.05)
    steps = reads_per_step(engine, requests)
    assert len(steps) > 10
    assert all(reads in ([], ["tolist"]) for reads in steps), steps
    assert sum(map(len, steps)) == len(steps) - 1  # the first step has nothing to read yet
