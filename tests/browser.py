"""Headless Chromium for report tests: does a page render offline, with every image, and no request out?

Debian's `chromium` (/usr/bin/chromium) is driven over the Chrome DevTools Protocol on a pipe
(`--remote-debugging-pipe`: JSON messages ending in NUL on file descriptors 3 and 4), so no port,
no websocket library and no driver binary are needed. From the page's own session it collects
every URL the page asked for (`Network.requestWillBeSent`, fired before a request can fail, so a
CDN URL shows up offline too), each <img>'s load state after scripts ran, the DOM, and a
full-page screenshot.

Use the session fixture `chromium` (registered in conftest.py): it installs Debian's package when
the binary is missing and the tests run as root, else skips the browser tests with the reason.
Every wait is bounded; the browser is killed on the way out whatever happened.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("FER_DATA_CHROMIUM", "/usr/bin/chromium"))
# Installing Debian's chromium takes ~2 minutes on a fresh machine; allow for a slow mirror.
INSTALL_TIMEOUT_S = 900
# A page load here takes 1-3 s (2 shared cores); generous so a loaded machine does not fail a test.
RENDER_TIMEOUT_S = 90
# After the load event, the page counts as settled once no request starts for this long.
SETTLE_S = 0.5
# Screenshots are capped so a very long page does not become a 100 MB PNG.
MAX_SHOT_HEIGHT = 12000
# Request URLs are kept this long: enough to judge them, short of megabytes of data: URIs.
URL_CHARS = 200
# Schemes that do not leave the machine.
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")
FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)
IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  src: (i.currentSrc || i.src || '').slice(0, 120), complete: i.complete, naturalWidth: i.naturalWidth,
  alt: i.alt})))"""


@dataclass
class Rendered:
    """What a page did in the browser."""

    url: str
    screenshot: Path
    dom: str
    images: list[dict[str, Any]]
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "URL: error" of every request that failed
    console: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    values: dict[str, Any] = field(default_factory=dict)  # results of the caller's `evaluate` expressions

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        return [i for i in self.images if not i["complete"] or i["naturalWidth"] <= 0]

    @property
    def network_requests(self) -> list[str]:
        """Requests that would leave the machine (anything but file:, data:, about:, blob:)."""
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]

    def assert_offline_complete(self, min_images: int = 0) -> None:
        """Every <img> loaded (at least MIN_IMAGES of them) and no request left the machine."""
        assert not self.network_requests, f"{self.url} requested: {self.network_requests[:10]}"
        assert not self.broken_images, f"{self.url}: images that did not load: {self.broken_images[:5]}"
        assert len(self.images) >= min_images, f"{self.url}: {len(self.images)} images, expected >= {min_images}"


def ensure_chromium() -> str | None:
    """None when CHROMIUM is there (installing Debian's package if we are root); else why it is not."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{CHROMIUM} is absent and we cannot install it (needs root and apt-get): apt-get install chromium"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = "apt-get update -qq && apt-get install -y -qq chromium"
    try:
        done = subprocess.run(
            cmd, shell=True, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"`{cmd}` took over {INSTALL_TIMEOUT_S} s"
    if done.returncode or not CHROMIUM.exists():
        return f"`{cmd}` failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The browser binary; skips the test when it is absent and cannot be installed."""
    reason = ensure_chromium()
    if reason:
        pytest.skip(reason)
    return CHROMIUM


class _Pipe:
    """The DevTools protocol over a pipe: send commands, collect events, bounded by a deadline."""

    def __init__(self, to_browser: int, from_browser: int, deadline: float):
        self.w, self.r, self.deadline = to_browser, from_browser, deadline
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(self.deadline)
            if reply is None:
                raise TimeoutError(f"no reply to {method} in time")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def wait_event(self, method: str, session: str) -> None:
        while not any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            if self._read(self.deadline) is None:
                raise TimeoutError(f"no {method} in time")

    def settle(self, quiet_s: float) -> None:
        """Read events until none arrives for QUIET_S seconds (or the deadline)."""
        while self._read(min(self.deadline, time.monotonic() + quiet_s)) is not None:
            pass

    def _read(self, until: float) -> dict[str, Any] | None:
        """The next message (events are also kept in self.events), or None when UNTIL passes first."""
        while b"\0" not in self.buf:
            left = until - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                return None
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the pipe (it crashed or failed to start)")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        msg = json.loads(raw)
        if "method" in msg:
            self.events.append(msg)
        return msg


def render(
    html_file: str | Path,
    out_dir: str | Path,
    *,
    width: int = 1400,
    height: int = 1000,
    binary: str | Path = CHROMIUM,
    timeout_s: float = RENDER_TIMEOUT_S,
    evaluate: dict[str, str] | None = None,
) -> Rendered:
    """Open HTML_FILE in headless Chromium; write OUT_DIR/<folder>-<name>.png (full page); return what happened.

    EVALUATE: {name: JavaScript expression}, evaluated after the page settled (JSON-able results).
    """
    path = Path(html_file).resolve()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    url = path.as_uri()
    profile = tempfile.mkdtemp(prefix="fer-data-chromium-")
    to_r, to_w = os.pipe()  # we write commands -> browser reads them on fd 3
    from_r, from_w = os.pipe()  # browser writes replies on fd 4 -> we read

    def child_fds() -> None:  # move both ends above 4 first, so neither dup2 clobbers the other
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r, from_w)]
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    name = f"{path.parent.name}-{path.stem}"  # report/index.html and gx/index.html do not collide
    log = (out / f"{name}.chromium.log").open("wb")
    args = [str(binary), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=child_fds, pass_fds=(3, 4)
    )
    os.close(to_r)
    os.close(from_w)
    try:
        cdp = _Pipe(to_w, from_r, time.monotonic() + timeout_s)
        return _drive(cdp, url, out / f"{name}.png", width, evaluate or {})
    finally:
        for fd in (to_w, from_r):
            os.close(fd)
        proc.kill()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _drive(cdp: _Pipe, url: str, shot: Path, width: int, evaluate: dict[str, str]) -> Rendered:
    target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Network", "Runtime"):
        cdp.send(f"{domain}.enable", session=session)
    cdp.events.clear()
    cdp.send("Page.navigate", {"url": url}, session=session)
    cdp.wait_event("Page.loadEventFired", session)
    cdp.settle(SETTLE_S)
    images = json.loads(_evaluate(cdp, session, IMAGES_JS))
    dom = _evaluate(cdp, session, "document.documentElement.outerHTML")
    values = {name: _evaluate(cdp, session, js) for name, js in evaluate.items()}
    size = cdp.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": width, "height": min(size["height"], MAX_SHOT_HEIGHT), "scale": 1}
    png = cdp.send(
        "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session=session
    )["data"]
    shot.write_bytes(base64.b64decode(png))
    mine = [e for e in cdp.events if e.get("sessionId") == session]
    sent = [e["params"] for e in mine if e["method"] == "Network.requestWillBeSent"]
    urls = {p["requestId"]: p["request"]["url"][:URL_CHARS] for p in sent}
    return Rendered(
        url=url,
        screenshot=shot,
        dom=dom,
        images=images,
        requests=[
            e["params"]["request"]["url"][:URL_CHARS] for e in mine if e["method"] == "Network.requestWillBeSent"
        ],
        failed=[
            f"{urls.get(e['params']['requestId'], '?')}: {e['params'].get('errorText', '')}"
            for e in mine
            if e["method"] == "Network.loadingFailed"
        ],
        console=[_console_text(e) for e in mine if _is_console_error(e)],
        values=values,
    )


def _evaluate(cdp: _Pipe, session: str, expression: str) -> Any:
    res = cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
    if "exceptionDetails" in res:
        raise RuntimeError(f"evaluating {expression[:40]!r}: {res['exceptionDetails']}")
    return res["result"]["value"]


def _is_console_error(e: dict[str, Any]) -> bool:
    if e["method"] == "Runtime.exceptionThrown":
        return True
    return e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") == "error"


def _console_text(e: dict[str, Any]) -> str:
    p = e["params"]
    if e["method"] == "Runtime.exceptionThrown":
        d = p["exceptionDetails"]
        return str((d.get("exception") or {}).get("description") or d.get("text"))
    return " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
