"""Drive the app's page in headless Debian chromium (Playwright's Python API; a browser is never downloaded).

`AppPage` knows the page's stable hooks: `#chat-left/#chat-right` (a side's conversation: `#history-left`, the
finished exchanges, and `#live-left`, the exchange a running turn streams into), `.hh-thinking` / `.hh-answer` /
`.hh-error` marker spans inside messages, `#stats-left/#stats-right`, `#message`, `#send`, `#stop`, ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip

# Samples, in the page itself, the text length of the exchange each side streams now, whether each side's stats
# line says it finished, and whether the page is at rest (the last exchange moved into the history).
SAMPLE_JS = """() => {
  const pane = (side) => {
    const chat = document.querySelector(`#live-${side}`);
    const marked = '.message-content:has(.hh-thinking), .message-content:has(.hh-answer)';
    const text = chat ? chat.querySelectorAll(marked) : [];
    let length = 0; text.forEach((node) => { length += node.innerText.length; });
    const stats = document.querySelector(`#stats-${side}`);
    return {length, finished: !!stats && /tok\\/s|stopped|error/.test(stats.innerText)};
  };
  const resting = !document.querySelector('#live-left [data-testid="user"], #live-right [data-testid="user"]');
  return {t: performance.now(), left: pane('left'), right: pane('right'), resting};
}"""


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class AppPage:
    page: Any

    def open(self, url: str) -> AppPage:
        self.page.goto(url)
        self.page.wait_for_selector("#message textarea")
        self.page.wait_for_function("() => document.querySelector('#model-right input')?.value !== ''")
        return self

    def send(self, text: str) -> None:
        """Type and send a message; returns once the new exchange shows in the left pane."""
        before = len(self.user_messages("left"))
        self.page.fill("#message textarea", text)
        self.page.click("#send")
        self.page.wait_for_function(
            "(n) => document.querySelectorAll('#chat-left [data-testid=\"user\"]').length > n", arg=before
        )

    def wait_text(self, selector: str, text: str, timeout_s: float = 30.0) -> None:
        self.page.wait_for_function(
            "([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)",
            arg=[selector, text], timeout=timeout_s * 1000,
        )  # fmt: skip

    def click(self, elem_id: str) -> None:
        self.page.click(f"#{elem_id}")

    def open_tab(self, name: str) -> None:
        """Select the page's tab `name` (Chat, Evaluate, Train): only the selected tab's controls can be used."""
        self.page.get_by_role("tab", name=name).click()

    def texts(self, side: str, marker: str) -> list[str]:
        """Texts of the messages in one pane holding a marker span (hh-thinking, hh-answer, hh-error, ...)."""
        return self.page.locator(f"#chat-{side} .message-content:has(.{marker})").all_inner_texts()

    def user_messages(self, side: str, box: str = "chat") -> list[str]:
        """The user messages a side shows: in its whole conversation (`chat`), its `history` or its `live` box."""
        return self.page.locator(f'#{box}-{side} [data-testid="user"]').all_inner_texts()

    def stats(self, side: str) -> str:
        return self.page.inner_text(f"#stats-{side}")

    def message_box(self) -> str:
        return self.page.input_value("#message textarea")

    def sample(self) -> dict[str, Any]:
        return self.page.evaluate(SAMPLE_JS)

    def wait_finished(self, timeout_s: float = 120.0) -> None:
        """Until both stats lines report a finished reply (tok/s, stopped or error) and the exchange has moved into
        the history."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.sample()
            if state["left"]["finished"] and state["right"]["finished"] and state["resting"]:
                return
            time.sleep(0.1)
        raise AssertionError(f"the turn did not finish in {timeout_s} s: {self.stats('left')} | {self.stats('right')}")

    def wait_both_streaming(self, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Sample until both panes show text while neither has finished; returns the samples taken."""
        samples, deadline = [], time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.sample()
            samples.append(state)
            left, right = state["left"], state["right"]
            if left["length"] and right["length"] and not left["finished"] and not right["finished"]:
                return samples
            if left["finished"] and right["finished"]:
                break
            time.sleep(0.02)
        raise AssertionError(f"never saw both panes streaming at once; last samples: {samples[-3:]}")

    def set_max_tokens(self, value: int, attempts: int = 4) -> None:
        """Open the Settings accordion (if closed) and type the max new tokens value until the slider shows it.

        Under load a keystroke can land before the number box is wired up (CI saw the slider never follow), so
        the value is typed again until the slider agrees or the attempts run out.
        """
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        box = self.page.locator('#max-tokens input[type="number"]')
        if not box.is_visible():
            self.page.get_by_text("Settings: persona, sampling, seed").click()
        box.wait_for(state="visible")
        shown = "(v) => document.querySelector('#max-tokens input[type=range]').value === String(v)"
        for attempt in range(attempts):
            box.fill(str(value))
            box.press("Enter")
            box.press("Tab")  # the number box commits on change/blur
            try:
                self.page.wait_for_function(shown, arg=value, timeout=10_000)
                return
            except PlaywrightTimeout:
                if attempt == attempts - 1:
                    raise

    def select_model(self, side: str, name: str) -> None:
        self.pick(f"model-{side}", name)
        self.page.wait_for_function(
            "([side, name]) => document.querySelector(`#model-${side} input`).value.startsWith(name)", arg=[side, name]
        )

    def pick(self, elem_id: str, label: str) -> None:
        """Open a dropdown and click one of ITS options (other dropdowns keep their lists in the DOM)."""
        self.page.click(f"#{elem_id} input")
        self.page.locator(f"#{elem_id}").get_by_role("option", name=label, exact=True).click()

    def model_options(self, side: str) -> list[str]:
        self.page.click(f"#model-{side} input")
        options = self.page.locator(f"#model-{side}").get_by_role("option").all_inner_texts()
        self.page.locator("#message textarea").focus()  # closes the list (Escape leaves it half-open)
        return [option.replace("✓", "").strip() for option in options]
