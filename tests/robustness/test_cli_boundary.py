"""The command-line boundary: exit codes of OS errors and interrupts, seeds, layer lists, --out.

Each bad value is refused in one sentence with exit 2 before any work starts; exit 3 is kept
for a full disk (or quota) and memory, 130 for Ctrl-C.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

import isoscope.evaluate
import isoscope.evaluate._run
import isoscope.metrics
from isoscope._validation import MAX_SEED, check_seed, parse_layers
from isoscope.cli import app
from isoscope.errors import InputError

runner = CliRunner()


@pytest.fixture
def vectors(tmp_path: Path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((120, 6)).astype(np.float32) + 2)
    return path


def _no_work(*args: object, **kwargs: object) -> None:
    raise AssertionError("the command started its work before checking its arguments")


def _raises(exc: BaseException):
    def fake(*args: object, **kwargs: object) -> None:
        raise exc

    return fake


# -- OS errors, memory and interrupts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EISDIR, "Is a directory"),
        (errno.ENOTDIR, "Not a directory"),
        (errno.EEXIST, "File exists"),
        (errno.EACCES, "Permission denied"),
        (errno.ENOENT, "No such file or directory"),
    ],
    ids=["is-a-directory", "not-a-directory", "file-exists", "permission", "missing"],
)
def test_os_errors_that_are_not_a_full_disk_exit_2_naming_the_path(
    vectors, monkeypatch, one_sentence, code, reason
) -> None:
    where = str(vectors.parent / "somewhere")
    monkeypatch.setattr(isoscope.metrics, "analyze", _raises(OSError(code, reason, where)))
    result = runner.invoke(app, ["analyze", str(vectors)])
    last = one_sentence(result, rf"^error: Cannot use {where}: {reason}\.$", code=2)
    assert "disk" not in last and "memory" not in last


def test_os_error_with_two_paths_names_both(vectors, monkeypatch, one_sentence) -> None:
    exc = OSError(errno.EXDEV, "Invalid cross-device link", "/a/src", None, "/b/dst")
    monkeypatch.setattr(isoscope.metrics, "analyze", _raises(exc))
    one_sentence(runner.invoke(app, ["analyze", str(vectors)]),
                 r"^error: Cannot use /a/src -> /b/dst: Invalid cross-device link\.$", code=2)


@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG], ids=["no-space", "quota", "file-too-large"]
)
def test_full_disk_exits_3(vectors, monkeypatch, one_sentence, code) -> None:
    exc = OSError(code, os.strerror(code), "/full/results.json")
    monkeypatch.setattr(isoscope.metrics, "analyze", _raises(exc))
    one_sentence(runner.invoke(app, ["analyze", str(vectors)]),
                 rf"^error: {os.strerror(code)} while writing /full/results\.json; free some space",
                 code=3)


def test_out_of_memory_exits_3(vectors, monkeypatch, one_sentence) -> None:
    monkeypatch.setattr(isoscope.metrics, "analyze", _raises(MemoryError()))
    one_sentence(runner.invoke(app, ["analyze", str(vectors)]), r"^error: Out of memory", code=3)


def test_interrupt_exits_130_in_one_line(vectors, monkeypatch) -> None:
    monkeypatch.setattr(isoscope.metrics, "analyze", _raises(KeyboardInterrupt()))
    result = runner.invoke(app, ["analyze", str(vectors)])
    assert result.exit_code == 130, result.output
    assert result.output.strip() == "interrupted"


def test_ctrl_c_of_a_real_process_exits_130_without_traceback(vectors, tmp_path) -> None:
    """SIGINT delivered to a running command: one line, exit 130 (not click's 'Aborted!', 1)."""
    ready = tmp_path / "ready"
    prelude = (
        "import pathlib, time, isoscope.metrics as m\n"
        "def slow(*a, **k):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(60)\n"
        "m.analyze = slow\n"
        "from isoscope.cli import app\n"
        "app()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", prelude, "analyze", str(vectors)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert output.strip() == "interrupted", output


def test_absurd_layer_range_is_one_sentence_not_out_of_memory(vectors, one_sentence) -> None:
    # Before: the range was materialised, MemoryError, "Out of memory" and exit 3.
    result = runner.invoke(app, ["analyze", str(vectors), "--layers", "0-99999999999"])
    one_sentence(result, r"--layers range '0-99999999999' spans more than 100,000 layers", code=2)


# -- seeds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70], ids=["negative", "2^32", "2^70"])
@pytest.mark.parametrize("command", ["analyze", "evaluate", "findings", "run"])
def test_seed_out_of_range_is_refused_before_any_work(
    vectors, tmp_path, monkeypatch, one_sentence, command, seed
) -> None:
    monkeypatch.setattr(isoscope.metrics, "analyze", _no_work)
    monkeypatch.setattr(isoscope.evaluate, "evaluate", _no_work)
    monkeypatch.setattr(isoscope.evaluate._run, "_load_model", _no_work)
    out = tmp_path / "out"
    argv = {
        "analyze": ["analyze", str(vectors)],
        "evaluate": ["evaluate", "--task", f"wordsim={vectors}"],
        "findings": ["findings", "--work", str(out), "--out", str(out / "f.md")],
        "run": ["run", "--out", str(out)],
    }[command]
    result = runner.invoke(app, [*argv, "--seed", str(seed)])
    one_sentence(result, rf"^error: --seed must be an integer in \[0, 4294967295\].*got {seed}\.$")
    assert not out.exists()


def test_largest_seed_runs_through_numpy_and_scikit_learn(vectors, tmp_path) -> None:
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["analyze", str(vectors), "--seed", str(MAX_SEED), "--sample", "0",
                                 "--k-max", "3", "--silhouette-sample", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_check_seed_refuses_non_integers() -> None:
    assert check_seed(0) == 0 and check_seed(np.int64(7)) == 7
    for bad in (True, 1.5, "3", None):
        with pytest.raises(InputError, match=r"--seed must be an integer"):
            check_seed(bad)


def test_seed_range_is_stated_in_help() -> None:
    group = typer.main.get_command(app)
    for command in ("analyze", "evaluate", "findings"):
        (seed,) = [p for p in group.commands[command].params if p.name == "seed"]  # type: ignore[attr-defined]
        assert seed.help.endswith("an integer in [0, 2**32-1]."), (command, seed.help)


# -- layer lists ---------------------------------------------------------------------------------


def test_reversed_layer_range_is_one_sentence(vectors, tmp_path, monkeypatch, one_sentence) -> None:
    # Before: analyze ran with no layers, wrote results without any, exit 0.
    monkeypatch.setattr(isoscope.metrics, "analyze", _no_work)
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["analyze", str(vectors), "--layers", "5-2", "--out", str(out)])
    one_sentence(result, r"^error: --layers range '5-2' is reversed; write it low to high \(2-5\)\.$")
    assert not out.exists()


def test_reversed_layer_range_in_extract_is_refused_before_loading(tmp_path, one_sentence) -> None:
    out = tmp_path / "store"
    result = runner.invoke(app, ["extract", "--model", "no-such-model", "--corpus", "nowhere.txt",
                                 "--out", str(out), "--layers", "5-2", "--no-progress"])
    one_sentence(result, r"--layers range '5-2' is reversed")
    assert not out.exists()


def test_evaluate_layer_uses_the_same_parser(one_sentence, monkeypatch, vectors) -> None:
    monkeypatch.setattr(isoscope.evaluate._run, "_load_model", _no_work)
    result = runner.invoke(app, ["evaluate", "--task", f"wordsim={vectors}", "--layer", "3-1"])
    one_sentence(result, r"--layer range '3-1' is reversed")
    result = runner.invoke(app, ["evaluate", "--task", f"wordsim={vectors}", "--layer", "all"])
    one_sentence(result, r"--layer takes layer indices here, not 'all'\.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("all", None),
        (" ALL ", None),
        ("last", [-1]),
        ("first", [0]),
        ("0,3, 6", [0, 3, 6]),
        ("0-2,5", [0, 1, 2, 5]),
        ("2 - 4", [2, 3, 4]),
        ("3-3", [3]),
        ("-1,-2", [-1, -2]),
        ("1,1,0-1", [1, 0]),
        ("0,last", [0, -1]),
    ],
)
def test_parse_layers(text, expected) -> None:
    assert parse_layers(text) == expected


@pytest.mark.parametrize("text", ["a-b", "5-2", "1,,2", "0-", "--1", "all,3", "1.5", "-3-5"])
def test_parse_layers_refuses(text) -> None:
    with pytest.raises(InputError, match=r"--layers"):
        parse_layers(text)


# -- --out ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp, r"is a folder; give a file name such as"),
        (lambda tmp: _file(tmp / "f") / "r.json", r"cannot be created: .*/f is a file, not a folder\."),
        (lambda tmp: _file(tmp / "f") / "sub" / "r.json", r"cannot be created: .*/f is a file, not a folder\."),
    ],
    ids=["folder", "under-a-file", "deep-under-a-file"],
)
@pytest.mark.parametrize("command", ["analyze", "evaluate"])
def test_out_is_checked_before_any_work(
    vectors, tmp_path, monkeypatch, one_sentence, command, make, message
) -> None:
    monkeypatch.setattr(isoscope.metrics, "analyze", _no_work)
    monkeypatch.setattr(isoscope.evaluate, "evaluate", _no_work)
    monkeypatch.setattr(isoscope.evaluate._run, "_load_model", _no_work)
    out = make(tmp_path)
    argv = ["analyze", str(vectors)] if command == "analyze" else [
        "evaluate", "--task", f"wordsim={vectors}"]
    one_sentence(runner.invoke(app, [*argv, "--out", str(out)]), rf"^error: --out .*{message}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_out_in_a_read_only_folder_is_checked_before_any_work(
    vectors, tmp_path, monkeypatch, one_sentence
) -> None:
    monkeypatch.setattr(isoscope.metrics, "analyze", _no_work)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = runner.invoke(app, ["analyze", str(vectors), "--out", str(locked / "r.json")])
    finally:
        locked.chmod(0o700)
    one_sentence(result, r"is not writable\.$")


def test_out_in_a_missing_folder_is_created(vectors, tmp_path) -> None:
    out = tmp_path / "new" / "deeper" / "r.json"
    result = runner.invoke(app, ["analyze", str(vectors), "--sample", "0", "--k-max", "3",
                                 "--silhouette-sample", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()


def _file(path: Path) -> Path:
    path.write_text("not a folder")
    return path


def test_the_checks_keep_the_command_line_import_light() -> None:
    """The validators import numpy only when a command runs, so ``isoscope --help`` stays instant."""
    code = "import sys, isoscope.cli; print(sorted({'numpy', 'torch', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
