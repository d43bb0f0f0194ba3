"""The sandbox's GPU arguments and kernel-compile cache, checked on a host without a GPU.

Device nodes are stand-in files in a temporary /dev given to the option builder; one test runs
bubblewrap for real with them, so the options are not only well-formed but accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.harnesses.contract import SandboxKind
from grader.sandbox import (
    COMPILE_CACHE_IN_SANDBOX,
    GPU_TMPFS_BYTES,
    SANDBOX_GID,
    ChildFiles,
    _bwrap_options,
    bwrap_path,
    compile_cache_dir,
    driver_library_dirs,
    gpu_sandbox_check,
    nvidia_device_nodes,
    sandbox_interpreter,
    sandbox_kind,
    sandbox_run,
)

NODES = ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


@pytest.fixture
def fake_dev(tmp_path: Path) -> Path:
    """A /dev with NVIDIA nodes (plain files here), the MIG caps folder and unrelated nodes."""
    dev = tmp_path / "dev"
    (dev / "nvidia-caps").mkdir(parents=True)
    (dev / "dri").mkdir()
    for name in (*NODES, "null", "kvm"):
        (dev / name).touch()
    return dev


@pytest.fixture
def fake_driver(tmp_path: Path) -> Path:
    driver = tmp_path / "nvidia" / "lib64"
    driver.mkdir(parents=True)
    (driver / "libcuda.so.1").touch()
    return driver


def _pairs(command: list[str], option: str) -> list[tuple[str, str]]:
    return [(command[i + 1], command[i + 2]) for i, arg in enumerate(command) if arg == option]


def _options_of(paths: tuple[str, ...], **layout) -> list[str]:
    with ChildFiles() as files:
        return _bwrap_options(paths, files, **layout)


def test_a_gpu_sandbox_gets_every_nvidia_node_with_dev_bind(fake_dev, fake_driver):
    command = _options_of((), gpu=True, dev_dir=fake_dev, driver_dirs=[str(fake_driver)])
    binds = _pairs(command, "--dev-bind")
    assert sorted(binds) == sorted(
        (str(fake_dev / name), f"/dev/{name}") for name in (*NODES, "nvidia-caps")
    )
    # After the fresh /dev, or it would hide them.
    assert command.index("--dev") < command.index("--dev-bind")
    assert ("/sys", "/sys") in _pairs(command, "--ro-bind-try")
    assert (str(fake_driver), str(fake_driver)) in _pairs(command, "--ro-bind")
    assert command[command.index("--size") + 1] == str(GPU_TMPFS_BYTES)
    env = dict(_pairs(command, "--setenv"))
    assert env["TRITON_LIBCUDA_PATH"] == str(fake_driver)
    assert env["LD_LIBRARY_PATH"].split(":")[0] == str(fake_driver)


def test_a_cpu_sandbox_gets_no_device_sys_or_driver(fake_dev, fake_driver):
    command = _options_of((), dev_dir=fake_dev, driver_dirs=[str(fake_driver)])
    assert "--dev-bind" not in command
    assert ("/sys", "/sys") not in _pairs(command, "--ro-bind-try")
    assert str(fake_driver) not in command
    assert "TRITON_LIBCUDA_PATH" not in command


def test_a_driver_folder_under_usr_is_not_bound_again(fake_dev):
    command = _options_of((), gpu=True, dev_dir=fake_dev, driver_dirs=["/usr/lib/x86_64-gnu"])
    assert "/usr/lib/x86_64-gnu" not in [target for _, target in _pairs(command, "--ro-bind")]
    assert dict(_pairs(command, "--setenv"))["TRITON_LIBCUDA_PATH"] == "/usr/lib/x86_64-gnu"


def test_no_dev_folder_means_no_nodes(tmp_path):
    assert nvidia_device_nodes(tmp_path / "missing") == []


def test_the_driver_torch_loaded_comes_first(tmp_path, fake_driver):
    other = tmp_path / "usr-lib"
    other.mkdir()
    (other / "libcuda.so.1").touch()
    maps = tmp_path / "maps"
    maps.write_text(
        "7f0000-7f1000 r-xp 00000000 00:00 0  /usr/lib/libc.so.6\n"
        f"7f2000-7f3000 r-xp 00000000 00:00 0  {fake_driver}/libcuda.so.580.159.04\n"
    )
    found = driver_library_dirs(maps, (str(other), str(tmp_path / "empty")))
    assert found == [str(fake_driver), str(other)]


def test_inferprep_bwrap_names_the_binary(tmp_path, monkeypatch):
    carried = tmp_path / "bwrap-root" / "usr" / "bin" / "bwrap"
    carried.parent.mkdir(parents=True)
    carried.write_text("#!/bin/sh\n")
    monkeypatch.setenv("INFERPREP_BWRAP", str(carried))
    assert bwrap_path() is None  # not executable yet
    carried.chmod(0o755)
    assert bwrap_path() == str(carried)


def test_without_a_gpu_the_check_says_why():
    check = gpu_sandbox_check()
    assert check["ok"] is False
    assert check["reason"]


needs_bwrap = pytest.mark.skipif(
    sandbox_kind() is not SandboxKind.BUBBLEWRAP, reason="bubblewrap does not work here"
)


@needs_bwrap
def test_bubblewrap_accepts_the_gpu_arguments(fake_dev, fake_driver, tmp_path, monkeypatch):
    monkeypatch.setenv("INFERPREP_VAR_DIR", str(tmp_path))
    cache = compile_cache_dir("def attention(): ...\n")
    script = (
        "ls /dev; test -d /dev/nvidia-caps; test -e /sys/class; ! touch /sys/x 2>/dev/null;"
        f" test -e {fake_driver}/libcuda.so.1; echo $TRITON_LIBCUDA_PATH;"
        f" touch {COMPILE_CACHE_IN_SANDBOX}/kernel && echo cache-written"
    )
    result = sandbox_run(
        ["/bin/sh", "-c", script],
        60,
        gpu=True,
        compile_cache=cache,
        dev_dir=fake_dev,
        driver_dirs=[str(fake_driver)],
    )
    assert result.returncode == 0, result.stderr
    seen = result.stdout.split()
    assert set(NODES) <= set(seen) and "kvm" not in seen
    assert str(fake_driver) in seen and "cache-written" in seen
    assert (cache / "kernel").exists()


@needs_bwrap
def test_a_sandbox_without_the_cache_cannot_reach_it():
    result = sandbox_run(["/bin/sh", "-c", f"test -e {COMPILE_CACHE_IN_SANDBOX}"], 60)
    assert result.returncode != 0


@needs_bwrap
def test_sandboxes_of_one_source_share_its_cache_under_their_own_uids(tmp_path, monkeypatch):
    """Each sandbox has its own uid: what one wrote into the cache, the next can replace."""
    monkeypatch.setenv("INFERPREP_VAR_DIR", str(tmp_path))
    cache = compile_cache_dir("def attention(): ...\n")
    write = (
        "import os, sys; os.umask(0o007); d = sys.argv[1] + '/kernel-key';"
        " os.makedirs(d, exist_ok=True); p = d + '/tmp.' + str(os.getuid());"
        " open(p, 'w').write('x'); os.replace(p, d + '/kernel'); print(os.getuid())"
    )
    program = [sandbox_interpreter().executable, "-I", "-c", write, COMPILE_CACHE_IN_SANDBOX]
    uids = set()
    for _ in range(2):
        result = sandbox_run(program, 60, compile_cache=cache)
        assert result.returncode == 0, result.stderr
        uids.add(result.stdout.strip())
    assert (cache / "kernel-key" / "kernel").read_text() == "x"
    if os.geteuid() == 0:
        assert len(uids) == 2


def test_each_source_has_its_own_compile_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERPREP_VAR_DIR", str(tmp_path))
    first = compile_cache_dir("def attention(): ...\n")
    assert first == compile_cache_dir("def attention(): ...\n")
    assert first != compile_cache_dir("def attention(): return 1\n")
    assert first.parent == tmp_path / "compile-cache"
    if os.geteuid() == 0:  # the sandboxes' group, whatever uid each sandbox runs as
        assert (first.stat().st_uid, first.stat().st_gid) == (0, SANDBOX_GID)
        assert first.stat().st_mode & 0o7777 == 0o2770
    else:
        assert first.stat().st_mode & 0o777 == 0o700
