"""The sandbox's system-call filter, run by a small classic-BPF interpreter for both
architectures it supports (the sandbox tests run it in the kernel, on this host's only)."""

from __future__ import annotations

import errno
import struct

import pytest

from grader.seccomp import (
    ARCHITECTURES,
    DENIED,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    UnsupportedArchitecture,
    sandbox_filter,
)

EPERM = RET_ERRNO | errno.EPERM
ENOSYS = RET_ERRNO | errno.ENOSYS
CLONE_NEWUSER = 0x10000000
CLONE_THREAD_FLAGS = 0x003D0F00  # what pthread_create passes to clone
SIGCHLD = 17


def _run(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """What the filter returns for one call: struct seccomp_data, then the program."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    instructions = [struct.unpack_from("=HBBI", program, at) for at in range(0, len(program), 8)]
    accumulator, pc = 0, 0
    while True:
        code, true, false, k = instructions[pc]
        if code == 0x20:  # ld [k]
            (accumulator,) = struct.unpack_from("=I", data, k)
            pc += 1
        elif code == 0x06:  # ret k
            return k
        else:
            taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: accumulator & k}[code]
            pc += 1 + (true if taken else false)


@pytest.fixture(params=sorted(ARCHITECTURES), ids=sorted(ARCHITECTURES))
def machine(request) -> str:
    return request.param


def _verdict(machine: str, name: str, *args: int) -> int:
    arch = ARCHITECTURES[machine]
    return _run(sandbox_filter(machine), arch.syscalls[name], arch.audit, args)


def test_every_denied_call_is_refused_with_eperm(machine):
    names = [name for name in DENIED if name in ARCHITECTURES[machine].syscalls]
    assert {name: _verdict(machine, name) for name in names} == dict.fromkeys(names, EPERM)


def test_new_namespaces_are_refused_but_threads_and_fork_are_not(machine):
    assert _verdict(machine, "clone", CLONE_NEWUSER | SIGCHLD) == EPERM
    assert _verdict(machine, "unshare", CLONE_NEWUSER) == EPERM
    assert _verdict(machine, "unshare", 0x80) == EPERM  # CLONE_NEWTIME
    assert _verdict(machine, "clone", CLONE_THREAD_FLAGS) == RET_ALLOW
    assert _verdict(machine, "clone", SIGCHLD) == RET_ALLOW
    assert _verdict(machine, "unshare", 0x200) == RET_ALLOW  # CLONE_FS
    assert _verdict(machine, "clone3") == ENOSYS


def test_personality_may_be_read_but_not_weakened(machine):
    assert _verdict(machine, "personality", 0xFFFFFFFF) == RET_ALLOW
    assert _verdict(machine, "personality", 0) == RET_ALLOW
    assert _verdict(machine, "personality", 0x0040000) == EPERM  # ADDR_NO_RANDOMIZE


def test_ordinary_calls_pass(machine):
    arch = ARCHITECTURES[machine]
    program = sandbox_filter(machine)
    read, write = (0, 1) if machine == "x86_64" else (63, 64)
    assert _run(program, read, arch.audit) == RET_ALLOW
    assert _run(program, write, arch.audit) == RET_ALLOW


def test_another_architectures_convention_kills_the_process(machine):
    arch = ARCHITECTURES[machine]
    program = sandbox_filter(machine)
    assert _run(program, 0, 0x40000003) == RET_KILL_PROCESS  # i386 (int 0x80 from x86_64)
    other = next(a.audit for m, a in ARCHITECTURES.items() if m != machine)
    assert _run(program, 0, other) == RET_KILL_PROCESS
    if arch.foreign_bit is not None:  # x32 numbers carry x86_64's audit value
        assert _run(program, arch.foreign_bit | 39, arch.audit) == RET_KILL_PROCESS


def test_a_machine_without_a_table_is_refused():
    with pytest.raises(UnsupportedArchitecture):
        sandbox_filter("riscv64")
