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

`ReplySplit` / `split_reply` are the chunk-to-delta step of OpenAIEngine's streams (server-side reasoning
fields or inline tags), kept here next to the splitter and free of I/O so tests feed them directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from serving.protocol import AnswerDelta, ReasoningDelta

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


def reasoning_of(delta: Any) -> str:
    """The server's own split of one streamed delta: `delta.reasoning` (vLLM >= 0.10), else
    `delta.reasoning_content` (older vLLM, DeepSeek-style APIs); '' when the server sent none."""
    extra = getattr(delta, "model_extra", None) or {}
    for key in ("reasoning", "reasoning_content"):
        value = getattr(delta, key, None) or extra.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


class ReplySplit:
    """The chunk-to-delta step of a streamed reply, without I/O or clock: feed what each chunk carries (the
    server's reasoning text, its content text); get ReasoningDelta / AnswerDelta pieces in order.

    A server that splits reasoning itself is trusted from its first reasoning piece on; until then content is
    split inline with ThinkSplitter (a server without a reasoning parser sends `...</think>answer` as content).
    """

    def __init__(self, starts_in_thinking: bool = True):
        self.starts_in_thinking = starts_in_thinking
        self._splitter: ThinkSplitter | None = None
        self._server_split = False
        self._answered = False

    def feed(self, reasoning: str, content: str) -> list[ReasoningDelta | AnswerDelta]:
        if reasoning:
            self._server_split = True
        elif content and not self._server_split:
            self._splitter = self._splitter or ThinkSplitter(starts_in_thinking=self.starts_in_thinking)
            reasoning, content = self._splitter.feed(content)
        return self._deltas(reasoning, content)

    def finish(self) -> list[ReasoningDelta | AnswerDelta]:
        """The stream ended: what the inline splitter still held back."""
        return self._deltas(*self._splitter.finish()) if self._splitter is not None else []

    @property
    def thinking_closed(self) -> bool:
        """Whether the thinking ended (a plain model that never thought counts as closed)."""
        if self._splitter is not None:
            return not self._splitter.in_thinking
        return self._answered

    def _deltas(self, reasoning: str, answer: str) -> list[ReasoningDelta | AnswerDelta]:
        self._answered = self._answered or bool(answer)
        return [kind(text) for text, kind in ((reasoning, ReasoningDelta), (answer, AnswerDelta)) if text]


def split_reply(
    pieces: Iterable[tuple[str, str]], starts_in_thinking: bool = True
) -> tuple[list[ReasoningDelta | AnswerDelta], bool]:
    """Pure: a whole reply's (server reasoning, content) pairs -> its deltas and whether the thinking closed."""
    split = ReplySplit(starts_in_thinking)
    deltas = [delta for reasoning, content in pieces for delta in split.feed(reasoning, content)]
    return deltas + split.finish(), split.thinking_closed
