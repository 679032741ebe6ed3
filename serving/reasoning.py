"""Split a streamed reply into thinking and answer when the server has no reasoning parser.

Fed piece by piece (as text arrives), it returns (reasoning, answer) pieces. Tags split across pieces
(`</th` + `ink>`) are held back until they can be decided. Qwen3-Thinking-2507's generation prompt already
opens `<think>`, so by default the reply starts inside the thinking block; a `<think>` at the very start
is dropped too.

    splitter = ThinkSplitter()
    for piece in pieces:
        reasoning, answer = splitter.feed(piece)
    reasoning, answer = splitter.finish()
    splitter.closed  # False: the reply never emitted `</think>`
"""

from __future__ import annotations

THINK_START = "<think>"
THINK_END = "</think>"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of tag (a tag maybe cut in two)."""
    for length in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-length:]):
            return length
    return 0


class ThinkSplitter:
    """Incremental `<think>...</think>` splitter: one start tag, one end tag, any piece boundaries."""

    def __init__(self, start_tag: str = THINK_START, end_tag: str = THINK_END, starts_in_thinking: bool = True):
        self.start_tag = start_tag
        self.end_tag = end_tag
        self.in_thinking = starts_in_thinking
        self.closed = False
        self._seen_any = False
        self._pending = ""

    def feed(self, piece: str) -> tuple[str, str]:
        """Take the next piece of text; return the (reasoning, answer) text that is now certain."""
        text = self._pending + piece
        self._pending = ""
        if not self._seen_any:
            stripped = text.lstrip()
            if self.start_tag.startswith(stripped) and len(stripped) < len(self.start_tag):
                self._pending = text  # could still become the opening tag
                return "", ""
            self._seen_any = True
            if stripped.startswith(self.start_tag):
                self.in_thinking = True
                text = stripped[len(self.start_tag) :]
        if not self.in_thinking:
            return "", text
        end = text.find(self.end_tag)
        if end >= 0:
            self.in_thinking = False
            self.closed = True
            return text[:end], text[end + len(self.end_tag) :]
        keep = _partial_suffix(text, self.end_tag)
        if keep:
            self._pending = text[-keep:]
            text = text[:-keep]
        return text, ""

    def finish(self) -> tuple[str, str]:
        """The stream ended: release what was held back (a cut tag that never completed is plain text)."""
        text, self._pending = self._pending, ""
        self._seen_any = True
        if self.in_thinking:
            return text, ""
        return "", text
