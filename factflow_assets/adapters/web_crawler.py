"""`web_crawler`: fetch one page and let a headless Chromium run its scripts; store the rendered DOM.

A drop-in for `web_scraper` on sites whose content a script writes into the page. The page itself
is fetched exactly as web_scraper fetches it (the same code: robots.txt, the per-host AIMD rate,
retries, the deadline, the size cap) and handed to the browser; the browser never touches the
network. Every request it makes — the scripts, the XHRs, the frames — is intercepted and fetched
by the stage's HTTP client, so the execution's network policy checks each one and each redirect
(a refused one is aborted and counted); images, fonts and media are not fetched at all by default.
Anything that escapes interception (a WebSocket) meets a proxy that is not there.

One browser (Debian's `chromium`, through Playwright, never a downloaded one) per stage run, at
most `pages` pages open at once. A page that crashes, or a browser that dies, fails the pages it
held with that cause; the browser is started again for the next page. Playwright's driver kills
the browser when the run's process goes, SIGKILL included.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections import Counter
from typing import Literal

from pydantic import Field

from ..fetching.http_fetch import FetchPolicy, FetchResult, fetch_once
from ..fetching.network_policy import RequestRefused
from ..fetching.robots import origin_of
from .base import AdapterConfig, Emit, HostNeed, HostNeedMissing, Message, PermanentError
from .web_scraper import WebScraper, WebScraperConfig, fetch_metadata

#: Where Debian, Ubuntu and Fedora put it; `executable_path` in the config for anywhere else.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Nothing listens here: a request that slips past interception fails instead of leaving.
NOWHERE = "http://127.0.0.1:9"
#: Response headers that describe the bytes on the wire, which the browser does not get.
_TRANSFER_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection"})
#: Times the browser is started again in one stage run before every further page fails.
MAX_BROWSER_STARTS = 4


class BrowserMissing(PermanentError):
    """No Chromium to drive."""


class BrowserNotStarting(PermanentError):
    """Chromium is there but does not start (or not in time): said in one line, naming it."""


def find_browser(executable_path: str | None = None) -> str | None:
    """The browser executable: the configured path, else the first of BROWSER_NAMES on PATH."""
    if executable_path:
        return shutil.which(executable_path)
    return next((found for name in BROWSER_NAMES if (found := shutil.which(name))), None)


def browser_version(executable_path: str | None = None) -> str:
    """`Chromium 120.0 at /usr/bin/chromium`; HostNeedMissing when there is none."""
    path = find_browser(executable_path)
    if path is None:
        raise HostNeedMissing("Chromium is not on this machine: install the chromium package (apt install chromium)")
    answer = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    return f"{answer.stdout.strip() or 'unknown version'} at {path}"


class WebCrawlerConfig(WebScraperConfig):
    executable_path: str | None = Field(None, description="Chromium's executable; default: chromium (or chromium-browser, google-chrome) on PATH.")
    pages: int = Field(4, ge=1, le=32, description="Pages rendered at once in the stage's browser.")
    wait_until: Literal["load", "domcontentloaded", "networkidle"] = Field(
        "networkidle",
        description="When a page counts as rendered: after its load event a script may still be fetching the content, so by "
        "default also until 500 ms pass without a request (at most networkidle_cap).",
    )
    networkidle_cap: float = Field(3.0, gt=0, le=120, description="Seconds networkidle may add after the load event.")
    wait_for_selector: str | None = Field(None, description="A CSS selector that must appear before the page counts as rendered.")
    render_timeout: float = Field(30.0, gt=0, le=600, description="Seconds for a page to render, after its HTML was fetched.")
    launch_timeout: float = Field(30.0, gt=0, le=600, description="Seconds for the browser to start (Playwright's own default: 180).")
    block: list[Literal["image", "font", "media", "stylesheet"]] = Field(
        ["image", "font", "media"], description="Resource types never fetched for a page."
    )


class WebCrawler(WebScraper):
    type = "web_crawler"
    config_model = WebCrawlerConfig
    config: WebCrawlerConfig

    @classmethod
    def host_needs(cls, config: AdapterConfig) -> list[HostNeed]:
        assert isinstance(config, WebCrawlerConfig)
        return [HostNeed("browser", config.executable_path or "chromium", lambda: browser_version(config.executable_path))]

    async def open(self) -> None:
        await super().open()
        self._executable = find_browser(self.config.executable_path)
        if self._executable is None:
            wanted = self.config.executable_path or " or ".join(BROWSER_NAMES[:2])
            raise BrowserMissing(
                f"web_crawler needs Chromium and found no {wanted} on PATH: install the chromium package (apt install chromium) or set executable_path"
            )
        from playwright.async_api import async_playwright

        self._subresources = FetchPolicy(
            timeout=self.config.timeout,
            total_timeout=self.config.render_timeout,
            max_bytes=self.config.max_bytes,
            max_redirects=self.config.max_redirects,
            retries=0,
        )
        self._pages = asyncio.Semaphore(self.config.pages)
        self._browser_lock = asyncio.Lock()
        self._browser = None
        self._idle: list = []  # rendered pages' tabs, blank, for the next page to use
        self._starts = 0
        self._playwright = await async_playwright().start()
        try:
            await self._live_browser()
        except BaseException:
            await self._playwright.stop()
            raise

    async def close(self) -> None:
        try:
            if self._browser is not None and self._browser.is_connected():
                await self._browser.close()
        finally:
            await self._playwright.stop()

    async def process(self, message: Message) -> list[Emit]:
        url, result = await self._fetch_page(message)  # exactly as web_scraper fetches it
        metadata = fetch_metadata(url, result)
        if "html" not in result.content_type.lower():  # nothing to render: stored as web_scraper stores it
            return [Emit(body=result.body, content_type=result.content_type, metadata={**metadata, "rendered": False})]
        html, requests, rendered_url = await self._render(result)
        if rendered_url != result.final_url:  # its script took the browser to another page, which was read
            metadata["final_url"] = rendered_url
        metadata.update(
            rendered=True,
            requests=requests["fetched"],
            refused_requests=requests["refused"],
            failed_requests=requests["failed"],
            blocked_requests=requests["blocked"],
        )
        return [Emit(body=html.encode("utf-8"), content_type="text/html; charset=utf-8", metadata=metadata)]

    async def _live_browser(self):
        """The stage's browser, started (again) when it is not running."""
        async with self._browser_lock:
            if self._browser is None or not self._browser.is_connected():
                if self._starts >= MAX_BROWSER_STARTS:
                    raise PermanentError(f"the browser died {self._starts} times in this stage run; not starting it again")
                self._starts += 1
                self._browser = await self._launch()
            return self._browser

    async def _launch(self):
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            return await self._playwright.chromium.launch(
                executable_path=self._executable,
                proxy={"server": NOWHERE},
                args=["--proxy-bypass-list=<-loopback>", "--disable-dev-shm-usage"],
                timeout=self.config.launch_timeout * 1000,
            )
        except PlaywrightTimeout:
            raise BrowserNotStarting(f"the browser {self._executable} did not start within {self.config.launch_timeout:g} s") from None
        except PlaywrightError as error:  # its message is a call log of many lines: the first says it
            first = next((part.strip() for part in str(error).splitlines() if part.strip()), type(error).__name__)
            raise BrowserNotStarting(f"the browser {self._executable} did not start: {first[:300]}") from None

    async def _render(self, document: FetchResult) -> tuple[str, Counter, str]:
        """The page's DOM after its scripts ran, what its requests came to, and the URL the
        browser ended on (a script may send it elsewhere: that page is then the one read)."""
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        requests: Counter = Counter()
        async with self._pages:
            browser = await self._live_browser()
            try:
                page = await self._open_page(browser)
            except PlaywrightError as error:
                raise PermanentError(f"the browser failed: {_first_line(error)}") from None
            reusable = False
            try:
                served: list[bool] = []
                navigations: list[str] = []

                async def route(route, request) -> None:
                    if not served and request.is_navigation_request() and request.frame == page.main_frame:
                        served.append(True)  # the page itself, as fetched
                        await route.fulfill(status=document.status, headers=_headers(document.headers), body=document.body)
                    else:
                        if request.is_navigation_request() and request.frame == page.main_frame:
                            navigations.append(request.url)  # its script sends the browser elsewhere: followed
                        await self._subresource(route, request, requests, document.final_url)

                await page.route("**/*", route)
                await page.goto(document.final_url, wait_until="domcontentloaded" if self.config.wait_until == "domcontentloaded" else "load")
                if self.config.wait_until == "networkidle":
                    try:
                        await page.wait_for_load_state("networkidle", timeout=self.config.networkidle_cap * 1000)
                    except PlaywrightTimeout:
                        pass  # a page that never goes quiet (polling, analytics) is taken as it is by then
                if self.config.wait_for_selector:
                    await page.wait_for_selector(self.config.wait_for_selector, state="attached")
                if page.url.startswith("chrome-error:"):  # Chromium's "This site can't be reached" is no content
                    where = f"its script sent the browser to {navigations[-1]}, which" if navigations else "it"
                    raise PermanentError(f"{document.final_url} could not be rendered: {where} could not be fetched")
                html = await page.content()
                reusable = True
                return html, requests, page.url
            except PlaywrightTimeout:
                raise PermanentError(_timeout_cause(self.config, document.final_url)) from None
            except PlaywrightError as error:
                cause = "the browser died" if not browser.is_connected() else "the page failed"
                raise PermanentError(f"{cause} while rendering {document.final_url}: {_first_line(error)}") from None
            finally:
                await self._put_back(page, reusable)

    async def _open_page(self, browser):
        """A page of the stage's pool: an idle one of this browser, or a new one (a context of its own)."""
        while self._idle:
            page = self._idle.pop()
            if not page.is_closed() and page.context.browser is browser:
                return page
        user_agent = self.request_headers.get("User-Agent") or self.context.http.headers.get("user-agent")
        context = await browser.new_context(service_workers="block", user_agent=user_agent)
        page = await context.new_page()
        page.set_default_timeout(self.config.render_timeout * 1000)
        return page

    async def _put_back(self, page, reusable: bool) -> None:
        """Back to the pool, emptied (no script of the last page runs on), or closed after a failure."""
        from playwright.async_api import Error as PlaywrightError

        try:
            await page.unroute_all(behavior="ignoreErrors")
            if reusable:
                await page.goto("about:blank")
                self._idle.append(page)
                return
            await page.context.close()
        except PlaywrightError:
            pass  # the page or the browser went meanwhile

    async def _subresource(self, route, request, requests: Counter, page_url: str) -> None:
        """Fetch what the page asks for through the stage's client (the network policy checks it
        and every redirect), or refuse it. The stage's request headers go with it only to the
        page's own origin: a third-party script or font gets no credentials."""
        if request.resource_type in self.config.block:
            requests["blocked"] += 1
            await route.abort("blockedbyclient")
            return
        if request.method != "GET":
            requests["blocked"] += 1  # a page being read has nothing to send anywhere
            await route.abort("blockedbyclient")
            return
        try:
            same_origin = origin_of(request.url) == origin_of(page_url)
            result = await fetch_once(self.context.http, request.url, self._subresources, self.request_headers if same_origin else None)
        except RequestRefused:
            requests["refused"] += 1
            await route.abort("blockedbyclient")
            return
        except Exception:  # noqa: BLE001 (unreachable, too large, too slow: the page goes on without it)
            requests["failed"] += 1
            await route.abort("failed")
            return
        requests["fetched"] += 1
        await route.fulfill(status=result.status, headers=_headers(result.headers), body=result.body)


def _headers(headers) -> dict[str, str]:
    """The response's headers for the browser, a repeated one's values joined (as HTTP allows)."""
    joined: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() not in _TRANSFER_HEADERS:
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


def _timeout_cause(config: WebCrawlerConfig, url: str) -> str:
    waited = f"the selector {config.wait_for_selector!r}" if config.wait_for_selector else f"wait_until {config.wait_until}"
    return f"{url} did not finish rendering within {config.render_timeout:g} s ({waited})"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
