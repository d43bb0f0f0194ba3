"""The sandbox's system-call filter: a classic BPF program for bubblewrap's ``--seccomp FD``.

bubblewrap installs it last, just before it runs the sandbox's program, so it binds every
process of the sandbox and cannot be removed. It refuses, with ``EPERM``:

- new namespaces and joining others: ``clone`` and ``unshare`` with any ``CLONE_NEW*`` flag,
  ``setns`` (a user namespace would give the candidate every capability inside it, mounts
  included);
- mounts and root changes: ``mount``, ``umount2``, ``pivot_root``, ``chroot`` and the
  file-descriptor mount API (``open_tree``, ``move_mount``, ``fsopen`` ...);
- reading or steering another process: ``ptrace``, ``process_vm_readv``/``writev``,
  ``pidfd_getfd``, ``kcmp``, ``process_madvise``;
- kernel attack surface a solution never needs: ``bpf``, ``perf_event_open``,
  ``userfaultfd``, the key store, ``io_uring_*``, ``kexec_*``, ``reboot``, ``swapon``/``off``,
  module loading, file handles (``open_by_handle_at``), ``acct``, ``syslog``, ``quotactl``,
  ``iopl``/``ioperm``;
- ``personality`` except the plain Linux personalities (``ADDR_NO_RANDOMIZE`` would turn
  address-space randomisation off);
- ``setsid`` and ``setpgid``: every process stays in the process group the sandbox started
  in, so the trusted side stops and resumes the whole tree with one ``killpg``.

``clone3`` fails with ``ENOSYS``: its flags sit in memory a filter cannot read, and the C
library then falls back to ``clone``, whose flags it can. A system call made under another
architecture's convention (``int 0x80`` from x86_64, the x32 ABI) kills the process: the
numbers below would not mean the same calls there.
"""

from __future__ import annotations

import errno
import platform
import struct
from dataclasses import dataclass

# struct sock_filter's opcodes (linux/bpf_common.h).
_LD_W_ABS = 0x20
_JMP_JEQ_K = 0x15
_JMP_JGE_K = 0x35
_JMP_JSET_K = 0x45
_RET_K = 0x06
# The actions (linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
_NR_OFFSET = 0
_ARCH_OFFSET = 4
# The low 32 bits of args[0] on a little-endian machine: clone's, unshare's and
# personality's flags all live there.
_ARG0_LOW_OFFSET = 16
# linux/sched.h: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET; unshare also
# takes NEWTIME (0x80), which in clone's flags is part of the exit signal.
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
CLONE_NEW_FLAGS |= 0x20000000 | 0x40000000
UNSHARE_NEW_FLAGS = CLONE_NEW_FLAGS | 0x00000080
# PER_LINUX, PER_LINUX32, UNAME26 and their union, and 0xffffffff (query): what Docker's
# default profile allows too.
PERSONALITIES_ALLOWED = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

DENIED = (
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "process_madvise",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "init_module",
    "finit_module",
    "delete_module",
    "name_to_handle_at",
    "open_by_handle_at",
    "acct",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "vhangup",
    "iopl",
    "ioperm",
    "setsid",
    "setpgid",
)


@dataclass(frozen=True)
class Architecture:
    """One architecture's audit identifier and the numbers of the calls the filter names."""

    audit: int
    syscalls: dict[str, int]
    # x86_64's x32 ABI: numbers with this bit set are x32 calls under the same audit arch.
    foreign_bit: int | None = None


# Calls added since Linux 5.1 have one number on every architecture (asm-generic/unistd.h).
_UNIFIED = {
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
}
# From asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64); aarch64 has no iopl/ioperm.
ARCHITECTURES = {
    "x86_64": Architecture(
        audit=0xC000003E,
        foreign_bit=0x40000000,
        syscalls=_UNIFIED
        | {
            "clone": 56,
            "unshare": 272,
            "personality": 135,
            "setns": 308,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "chroot": 161,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "kcmp": 312,
            "bpf": 321,
            "perf_event_open": 298,
            "userfaultfd": 323,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "kexec_load": 246,
            "kexec_file_load": 320,
            "reboot": 169,
            "swapon": 167,
            "swapoff": 168,
            "init_module": 175,
            "finit_module": 313,
            "delete_module": 176,
            "name_to_handle_at": 303,
            "open_by_handle_at": 304,
            "acct": 163,
            "syslog": 103,
            "quotactl": 179,
            "lookup_dcookie": 212,
            "vhangup": 153,
            "iopl": 172,
            "ioperm": 173,
            "setsid": 112,
            "setpgid": 109,
        },
    ),
    "aarch64": Architecture(
        audit=0xC00000B7,
        syscalls=_UNIFIED
        | {
            "clone": 220,
            "unshare": 97,
            "personality": 92,
            "setns": 268,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "chroot": 51,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "kcmp": 272,
            "bpf": 280,
            "perf_event_open": 241,
            "userfaultfd": 282,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "kexec_load": 104,
            "kexec_file_load": 294,
            "reboot": 142,
            "swapon": 224,
            "swapoff": 225,
            "init_module": 105,
            "finit_module": 273,
            "delete_module": 106,
            "name_to_handle_at": 264,
            "open_by_handle_at": 265,
            "acct": 89,
            "syslog": 116,
            "quotactl": 60,
            "lookup_dcookie": 18,
            "vhangup": 58,
            "setsid": 157,
            "setpgid": 154,
        },
    ),
}


class UnsupportedArchitecture(RuntimeError):
    """No system-call table for this machine: the sandbox cannot be filtered here."""


class _Program:
    """A forward-only BPF program whose jumps name labels, resolved when it is assembled."""

    def __init__(self) -> None:
        self.instructions: list[tuple[int, int | str, int | str, int]] = []
        self.labels: dict[str, int] = {}

    def load(self, offset: int) -> None:
        self.instructions.append((_LD_W_ABS, 0, 0, offset))

    def jump(self, opcode: int, k: int, true: int | str = 0, false: int | str = 0) -> None:
        """Compare the accumulator with ``k``: a label, or 0 for the next instruction."""
        self.instructions.append((opcode, true, false, k))

    def ret(self, action: int) -> None:
        self.instructions.append((_RET_K, 0, 0, action))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.instructions)

    def assemble(self) -> bytes:
        def offset(at: int, target: int | str) -> int:
            if isinstance(target, int):
                return target
            distance = self.labels[target] - at - 1
            if not 0 <= distance <= 255:
                raise ValueError(f"jump to {target} out of a conditional jump's range")
            return distance

        return b"".join(
            struct.pack("=HBBI", code, offset(at, true), offset(at, false), k)
            for at, (code, true, false, k) in enumerate(self.instructions)
        )


def sandbox_filter(machine: str | None = None) -> bytes:
    """The filter for ``machine`` (``platform.machine()`` by default), as bwrap reads it: an
    array of ``struct sock_filter``. Raises :class:`UnsupportedArchitecture` elsewhere."""
    machine = machine or platform.machine()
    arch = ARCHITECTURES.get(machine)
    if arch is None:
        raise UnsupportedArchitecture(f"no system-call table for {machine}")
    syscalls = arch.syscalls
    program = _Program()
    program.load(_ARCH_OFFSET)
    program.jump(_JMP_JEQ_K, arch.audit, false="kill")
    program.load(_NR_OFFSET)
    if arch.foreign_bit is not None:
        program.jump(_JMP_JGE_K, arch.foreign_bit, true="kill")
    for name in DENIED:
        if name in syscalls:
            program.jump(_JMP_JEQ_K, syscalls[name], true="eperm")
    program.jump(_JMP_JEQ_K, syscalls["clone3"], true="enosys")
    program.jump(_JMP_JEQ_K, syscalls["clone"], true="clone")
    program.jump(_JMP_JEQ_K, syscalls["unshare"], true="unshare")
    program.jump(_JMP_JEQ_K, syscalls["personality"], true="personality")
    program.ret(RET_ALLOW)
    for name, flags in (("clone", CLONE_NEW_FLAGS), ("unshare", UNSHARE_NEW_FLAGS)):
        program.label(name)
        program.load(_ARG0_LOW_OFFSET)
        program.jump(_JMP_JSET_K, flags, true="eperm", false="allow")
    program.label("personality")
    program.load(_ARG0_LOW_OFFSET)
    for persona in PERSONALITIES_ALLOWED:
        program.jump(_JMP_JEQ_K, persona, true="allow")
    program.label("eperm")
    program.ret(RET_ERRNO | errno.EPERM)
    program.label("enosys")
    program.ret(RET_ERRNO | errno.ENOSYS)
    program.label("allow")
    program.ret(RET_ALLOW)
    program.label("kill")
    program.ret(RET_KILL_PROCESS)
    return program.assemble()
