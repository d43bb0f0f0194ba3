"""Calling the candidate's object across the sandbox boundary: tensors through the shared
memory, a few numbers on the control channel.

The trusted side lays out every tensor of one exchange in the shared memory (:class:`Arena`):
it writes the inputs, poisons the outputs (NaN for floats, an id no vocabulary has for
integers) and sends only each tensor's place (:class:`Slot`). The sandbox maps the inputs as
tensors without copying (:func:`tensor_view`), calls the candidate's object and writes what it
returned into the output places (:func:`tensor_write`); its reply carries nothing but a
diagnostic per call. The trusted side then reads each output once, as a copy, and judges the
copy: what the candidate writes into the memory later, or what its reply says, changes nothing.

Every kind's module is imported by every sandbox: torch is imported inside functions.
"""

from __future__ import annotations

import functools
import mmap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import CandidateFailure
from grader.harnesses.contract import CallTiming, Verdict

if TYPE_CHECKING:
    import torch

    from grader.sandbox import SandboxSession

ALIGN_BYTES = 64
ITEM_BYTES = {"float32": 4, "float64": 8, "int64": 8, "uint8": 1}
# NaN never matches a tolerance; 0x7f7f... is a token id, count or index no answer can have,
# and 0x7f no mask's 0 or 1.
POISON_BYTE = {"float32": 0xFF, "float64": 0xFF, "int64": 0x7F, "uint8": 0x7F}
POISON_INT64 = int.from_bytes(b"\x7f" * 8, "little")
# A diagnostic from the sandbox is shown to the candidate, never believed: this much of it.
DIAGNOSTIC_CHARS = 300


@dataclass(frozen=True)
class Slot:
    """Where one tensor lies in the shared memory: its byte offset, dtype and shape."""

    offset: int
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count

    @property
    def nbytes(self) -> int:
        return self.numel * ITEM_BYTES[self.dtype]

    def as_json(self) -> list[Any]:
        return [self.offset, self.dtype, list(self.shape)]

    @classmethod
    def from_json(cls, data: list[Any]) -> Slot:
        offset, dtype, shape = data
        return cls(int(offset), str(dtype), tuple(int(size) for size in shape))


def aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGN_BYTES) * ALIGN_BYTES


def slot_bytes(dtype: str, *shape: int) -> int:
    """The room one tensor takes in an :class:`Arena` (for ``Harness.shared_bytes``)."""
    return aligned(Slot(0, dtype, tuple(shape)).nbytes)


class Arena:
    """The trusted side's layout of one exchange, handed out from the start of the memory.

    The sandbox is frozen from the arena's making until :meth:`exchange` wakes it (inside the
    trusted clock's window), and again from the reply on: no thread of the candidate's can
    start on the inputs early or finish an output late.
    """

    def __init__(self, session: SandboxSession) -> None:
        session.freeze()
        self.session = session
        self.shared = session.shared
        self.used = 0
        self.outputs: list[Slot] = []

    def _slot(self, dtype: str, shape: tuple[int, ...]) -> Slot:
        slot = Slot(self.used, dtype, tuple(int(size) for size in shape))
        if slot.offset + slot.nbytes > len(self.shared):
            raise ValueError(
                f"{slot.offset + slot.nbytes} bytes of tensors do not fit the "
                f"{len(self.shared)}-byte shared memory"
            )
        self.used += aligned(slot.nbytes)
        return slot

    def put(self, tensor: torch.Tensor) -> Slot:
        """Write an input tensor; returns its place."""
        slot = self._slot(str(tensor.dtype).removeprefix("torch."), tuple(tensor.shape))
        data = tensor.detach().contiguous().numpy()
        self.shared[slot.offset : slot.offset + slot.nbytes] = memoryview(data).cast("B")
        return slot

    def output(self, dtype: str, *shape: int) -> Slot:
        """Reserve and poison the place of an output."""
        slot = self._slot(dtype, shape)
        self.shared[slot.offset : slot.offset + slot.nbytes] = (
            bytes([POISON_BYTE[dtype]]) * slot.nbytes
        )
        self.outputs.append(slot)
        return slot

    def exchange(
        self,
        op: str,
        calls: list[dict[str, Slot]],
        timeout_s: float,
        extra: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], CallTiming]:
        """One request: ``op`` on each call's tensors in turn, back to back, in the sandbox
        (``extra``: a few numbers every call shares).

        Timed by the trusted clock alone (``outside_ns``: from waking the sandbox to its
        reply); the sandbox reports no time (``inside_ns`` 0). Every output is read at the
        reply and again once the sandbox is frozen: an output still changing after the reply
        (a thread left running, a replaced ``serve`` that answers first) is ``policy``.
        """
        places = [{name: slot.as_json() for name, slot in call.items()} for call in calls]
        request = {"op": op, "calls": places} | (extra or {})
        reply, outside_ns = self.session.call(request, timeout_s)
        at_reply = [self._bytes(slot) for slot in self.outputs]
        self.session.freeze()
        if any(
            self._bytes(slot) != seen for slot, seen in zip(self.outputs, at_reply, strict=True)
        ):
            raise CandidateFailure(
                Verdict.POLICY,
                "an output was still being written after the call returned: all of the work "
                "must be done before it returns",
            )
        return reply, CallTiming(0, outside_ns)

    def _bytes(self, slot: Slot) -> bytes:
        return self.shared[slot.offset : slot.offset + slot.nbytes]

    def read(self, slot: Slot) -> torch.Tensor:
        """A copy of what the sandbox left in ``slot`` (no view of the memory is kept)."""
        import torch

        view = torch.frombuffer(
            self.shared, dtype=getattr(torch, slot.dtype), count=slot.numel, offset=slot.offset
        )
        copy = view.clone().reshape(slot.shape)
        del view  # an exported view would keep the memory from closing
        return copy


def diagnostic(reply: dict[str, Any], index: int) -> str:
    """What the sandbox said went wrong in call ``index`` of an exchange, capped ("" if nothing)."""
    errors = reply.get("errors")
    if not isinstance(errors, list) or not 0 <= index < len(errors) or not errors[index]:
        return ""
    return str(errors[index])[:DIAGNOSTIC_CHARS]


def tensor_view(shared: mmap.mmap, data: list[Any]) -> torch.Tensor:
    """In the sandbox: the tensor at a slot's place, without a copy."""
    import torch

    slot = Slot.from_json(data)
    view = torch.frombuffer(
        shared, dtype=getattr(torch, slot.dtype), count=slot.numel, offset=slot.offset
    )
    return view.reshape(slot.shape)


def tensor_write(shared: mmap.mmap, data: list[Any], value: Any, what: str) -> str | None:
    """In the sandbox: copy ``value`` into an output slot; None, or why it could not be."""
    import torch

    slot = Slot.from_json(data)
    if type(value) is not torch.Tensor:
        return f"{what} returned {type(value).__name__}; expected a torch.Tensor"
    if tuple(value.shape) != slot.shape:
        return f"{what} returned shape {list(value.shape)}; expected {list(slot.shape)}"
    wanted_float = slot.dtype.startswith("float")
    if value.dtype.is_floating_point != wanted_float or value.dtype.is_complex:
        kind = "a floating-point" if wanted_float else "an integer"
        return f"{what} returned dtype {value.dtype}; expected {kind} tensor"
    tensor_view(shared, data).copy_(value.detach())
    return None


@functools.cache
def candidate_object(entry: Any) -> Any:
    """In the sandbox: the candidate's object, constructed once with no arguments (as the
    engine constructs its parts once) and kept for every later request."""
    return entry()
