"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (stdlib only).

The pipe transport avoids a websocket dependency and a TCP port: Chromium reads
NUL-terminated JSON commands from fd 3 and writes replies and events to fd 4.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd: int) -> int:
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """A headless Chromium driven through the DevTools protocol."""

    def __init__(
        self,
        exe: str,
        user_data_dir: Path,
        *,
        width: int = 1280,
        height: int = 900,
        extra_flags: tuple[str, ...] = (),
    ) -> None:
        r_cmd, self._w_cmd = os.pipe()
        self._r_evt, w_evt = os.pipe()
        # Move the child's ends above 9 so that putting them on fds 3 and 4 cannot clobber them.
        r_cmd, w_evt = (_high_fd(fd) for fd in (r_cmd, w_evt))
        args = [
            exe,
            *CHROMIUM_FLAGS,
            *extra_flags,
            f"--user-data-dir={user_data_dir}",
            "--remote-debugging-pipe",
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ]
        self.log_path = Path(user_data_dir).parent / "chromium-stderr.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        # The shell moves our pipe ends onto fds 3 and 4, where Chromium expects them.
        self.proc = subprocess.Popen(
            [
                "bash",
                "-c",
                f'exec 3<&{r_cmd} 4>&{w_evt} {r_cmd}<&- {w_evt}>&-; exec "$@"',
                "bash",
                *args,
            ],
            pass_fds=(r_cmd, w_evt),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(r_cmd)
        os.close(w_evt)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None
        self.viewport = (width, height)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r_evt, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one command and wait for its reply (raises on a protocol error)."""
        self._next_id += 1
        mid = self._next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w_cmd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no reply to {method} (chromium log: {self.log_path})")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if ev.get("method") == method and ev.get("sessionId") == self.session:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} event within {timeout} s")
                self._cond.wait(min(left, 0.5))

    def open_page(self, url: str, *, timeout: float = 60.0) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        att = self.send(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self.session = att["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        w, h = self.viewport
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", timeout)

    def evaluate(self, expression: str, *, timeout: float = 30.0) -> Any:
        res = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(
        self, path: Path, *, full_page: bool = False, clip: dict[str, float] | None = None
    ) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            m = self.send("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        elif clip is not None:
            params.update(captureBeyondViewport=True, clip={**clip, "scale": 1})
        data = self.send("Page.captureScreenshot", params, timeout=60)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for ev in list(self.events):
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
                )
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")
        return out

    def requested_urls(self) -> list[str]:
        return [
            ev["params"]["request"]["url"]
            for ev in list(self.events)
            if ev.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:  # noqa: BLE001 - already gone is fine
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._w_cmd)
        self._log.close()
