"""An exclusive lock on a run folder, so two ``isoscope run`` never write one ``--out``.

The lock is an ``fcntl.flock`` on ``FOLDER/.isoscope-run.lock``. The operating system drops it
when the holder exits, however it exits (even on SIGKILL), so a stale lock file never blocks a
later run; the file itself is left in place (removing it could let a third process lock a file
that a waiting second one no longer sees).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
from pathlib import Path
from types import TracebackType
from typing import IO

from isoscope.errors import InputError, RunLockedError

LOCK_NAME = ".isoscope-run.lock"


class RunLock:
    """Hold an exclusive, non-blocking lock on a run folder while it is written.

    Parameters
    ----------
    folder : str or os.PathLike
        The run folder (created, with its parents, when missing).

    Raises
    ------
    RunLockedError
        On entry, when another process holds the lock: "FOLDER is being written by another
        isoscope process (pid N) ...".
    InputError
        On entry, when ``folder`` exists and is not a folder.

    Examples
    --------
    >>> with RunLock(out):  # doctest: +SKIP
    ...     write_results(out)
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fh is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` at once (never waits)."""
        if self._fh is not None:
            return
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"The run folder {self.folder} is a file, not a folder.")
        self.folder.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            found = re.search(r"pid (\d+)", fh.read())
            fh.close()
            pid = found.group(1) if found else "unknown"
            raise RunLockedError(
                f"The run folder {self.folder} is being written by another isoscope process "
                f"(pid {pid}); wait for it to finish or choose another --out."
            ) from None
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Drop the lock (a no-op when it is not held)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
