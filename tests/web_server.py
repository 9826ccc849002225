"""A `viwo serve` application on 127.0.0.1 in a background thread (browser tests, screenshots, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

TOKEN = "ui-test-token-0123456789"

#: Debian's Chromium (`playwright install` cannot download here) and the flags it needs on these machines.
CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def browser_missing() -> str | None:
    """Why browser tests cannot run here (None when they can). Under CI=true they must not skip."""
    if CHROMIUM is not None and importlib.util.find_spec("playwright") is not None:
        return None
    why = ("browser tests need Debian's chromium-headless-shell (apt-get install -y chromium-headless-shell) "
           "and pip playwright")
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"CI=true: {why}")
    return why


@contextlib.contextmanager
def chromium():
    """Debian's Chromium launched through Playwright (a test module's browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch_console(page) -> list[str]:
    """The console errors and uncaught page errors ``page`` shows from now on (a list that fills)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


@contextlib.contextmanager
def ui_page(browser, url: str, **context_options):
    """A 1280×800 page of the served UI, connected and holding a canvas session. On leaving, the test fails
    if the page logged a console error (except those containing a string of ``page.allowed_problems``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **context_options)
    page = context.new_page()
    page.problems = watch_console(page)
    page.goto(url)
    page.wait_for_selector(".conn-open", timeout=15000)
    page.wait_for_function("window.viwo && window.viwo.store.get().session")
    try:
        yield page
    finally:
        allowed = getattr(page, "allowed_problems", ())
        left = [p for p in page.problems if not any(a in p for a in allowed)]
        context.close()
    assert not left, "console errors: " + "\n".join(left)


@contextlib.contextmanager
def serve_process(token: str, data: str | os.PathLike, *extra: str, timeout: float = 60):
    """A real ``viwo serve`` process of this checkout on 127.0.0.1 (its port is yielded once it accepts
    connections); stopped on leaving. For scripts that drive the server from outside (docs/screenshots.py,
    benchmarks/ui_latency.py)."""
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "viwoscript", "serve", "--port", str(port), "--token", token,
                             "--data", str(data), *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("viwo serve did not start: " + proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedUI:
    """``with ServedUI(data_dir) as s: s.url`` — the page's URL with its token; ``restart()`` keeps the port
    and the data folder (jobs and files survive, canvas sessions do not)."""

    def __init__(self, data: Path, *, port: int | None = None, canvas_size=(512, 512), **config):
        self.data = Path(data)
        self.port = port or free_port()
        self.canvas_size = canvas_size
        self.config_kw = config
        self.thread = None
        self.server = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/?token={TOKEN}"

    def config(self):
        from viwoscript.limits import Limits
        from viwoscript.server.config import ServerConfig

        kw = {"grants": [{"type": "diffusers.generate", "provider": "fake"}, {"type": "diffusers.upscale"},
                         {"type": "diffusers.inpaint"}, {"type": "controlnet.generate"}],
              **self.config_kw}
        return ServerConfig(tokens={TOKEN: "painter"}, explicit_token=True, data=self.data, roots=[self.data],
                            limits=Limits(gas=10**9, timeout=600), canvas_size=self.canvas_size, **kw)

    def session(self, sid: str):
        """The live CanvasSession ``sid`` (tests read its layers under its lock)."""
        return self.server.canvas_sessions.entries[sid].session

    def start(self):
        from aiohttp import web

        from viwoscript.server.app import SERVER_KEY, make_app

        ready = threading.Event()
        failed: list[BaseException] = []

        def target():
            loop = asyncio.new_event_loop()
            self.loop = loop
            asyncio.set_event_loop(loop)
            app = make_app(self.config())
            self.server = app[SERVER_KEY]
            runner = web.AppRunner(app, shutdown_timeout=1.0)
            try:
                loop.run_until_complete(runner.setup())
                site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
                loop.run_until_complete(site.start())
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                failed.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self.thread = threading.Thread(target=target, name="viwo-ui-test-server", daemon=True)
        self.thread.start()
        ready.wait(60)
        if failed:
            raise failed[0]
        return self

    def stop(self):
        if self.thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.thread = None

    def restart(self):
        self.stop()
        self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
