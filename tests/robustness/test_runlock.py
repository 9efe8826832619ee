"""The run-folder lock (isoscope._runlock.RunLock), held by one process at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isoscope._runlock import LOCK_NAME, RunLock
from isoscope.errors import InputError, RunLockedError

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from isoscope._runlock import RunLock\n"
    "with RunLock(sys.argv[1]):\n"
    "    Path(sys.argv[2]).touch()\n"
    "    time.sleep(120)\n"
)


def _start_holder(folder: Path, ready: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the holder did not take the lock: {proc.communicate()[0]}")
        time.sleep(0.05)
    return proc


def test_second_process_is_refused_naming_the_holder_then_gets_the_lock(tmp_path) -> None:
    folder = tmp_path / "run"
    holder = _start_holder(folder, tmp_path / "ready")
    try:
        with pytest.raises(RunLockedError) as info:
            RunLock(folder).acquire()
        message = str(info.value)
        assert message == (f"The run folder {folder} is being written by another isoscope process "
                           f"(pid {holder.pid}); wait for it to finish or choose another --out.")
        # Refused at once, never waiting; a third try is refused the same way.
        start = time.monotonic()
        with pytest.raises(RunLockedError, match=rf"\(pid {holder.pid}\)"):
            with RunLock(folder):
                pass
        assert time.monotonic() - start < 5
    finally:
        holder.send_signal(signal.SIGKILL)  # even a killed holder releases the lock
        holder.communicate(timeout=60)
    with RunLock(folder) as lock:
        assert lock.held
        assert (folder / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} ")
    assert not lock.held


def test_lock_in_the_same_process_is_released_on_error(tmp_path) -> None:
    folder = tmp_path / "a" / "b"
    with pytest.raises(ZeroDivisionError), RunLock(folder):
        assert folder.is_dir()
        1 / 0  # noqa: B018
    with RunLock(folder), pytest.raises(RunLockedError):
        RunLock(folder).acquire()  # another open file description: refused like another process


def test_folder_that_is_a_file_is_one_sentence(tmp_path) -> None:
    file = tmp_path / "out"
    file.write_text("mine")
    with pytest.raises(InputError, match=r"^The run folder .*out is a file, not a folder\.$"):
        RunLock(file).acquire()
    assert file.read_text() == "mine"
