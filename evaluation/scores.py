"""Per-reply scores: thinking health, character chrF and ROUGE-L against the reference, persona markers.

Chinese has no spaces, so the text scores work on characters: chrF from sacrebleu (character n-grams up to
6, no word n-grams), ROUGE-L as the F1 of the longest common subsequence of characters (a dozen lines:
the maintained ROUGE packages split on spaces or need jieba, which would make it a word score). Answer
scores read the text after `</think>` only; a reply whose thinking never closed has no answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_MARKERS = ["本宫", "臣妾", "皇上", "小主", "娘娘", "奴婢", "嫔妾", "皇后", "太后", "华妃", "四郎", "贵人"]
THINKING_CLASSES = ("valid", "empty", "never_closed", "cut")


@dataclass(frozen=True)
class Reply:
    """What one side answered to one prompt, as the engine streamed it."""

    thinking: str
    answer: str
    finish_reason: str
    thinking_closed: bool
    reasoning_tokens: int = 0
    answer_tokens: int = 0


def thinking_class(reply: Reply) -> str:
    """valid (closed, non-empty), empty (closed at once), never_closed (stopped inside it), cut (token limit)."""
    if not reply.thinking_closed:
        return "cut" if reply.finish_reason == "length" else "never_closed"
    return "valid" if reply.thinking.strip() else "empty"


def scored_answer(reply: Reply) -> str:
    """The answer the scores read: the text after `</think>`; nothing when the thinking never closed."""
    return reply.answer.strip() if reply.thinking_closed else ""


def chrf(answer: str, reference: str) -> float:
    """Character chrF (0-100) from sacrebleu; an empty answer scores 0."""
    if not answer or not reference:
        return 0.0
    from sacrebleu.metrics import CHRF

    return float(CHRF().sentence_score(answer, [reference]).score)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (one row of the table kept: O(len(b)) memory)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(answer: str, reference: str) -> float:
    """ROUGE-L F1 (0-100) over characters, whitespace ignored."""
    a, b = [c for c in answer if not c.isspace()], [c for c in reference if not c.isspace()]
    if not a or not b:
        return 0.0
    common = lcs_length(a, b)
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 100.0 * 2 * precision * recall / (precision + recall)


def marker_count(text: str, markers: Sequence[str]) -> int:
    return sum(text.count(marker) for marker in markers if marker)


def reply_scores(reply: Reply, reference: str, markers: Sequence[str]) -> dict[str, float | int | str]:
    """Every score of one reply (numbers are what the report aggregates; strings are categories)."""
    answer = scored_answer(reply)
    health = thinking_class(reply)
    return {
        "chrf": chrf(answer, reference),
        "rouge_l": rouge_l(answer, reference),
        "has_marker": int(marker_count(answer, markers) > 0),
        "markers": marker_count(answer, markers),
        "answered": int(bool(answer)),
        "thinking_closed": int(reply.thinking_closed),
        "answer_chars": len(answer),
        "thinking_chars": len(reply.thinking),
        "reasoning_tokens": reply.reasoning_tokens,
        "answer_tokens": reply.answer_tokens,
        "thinking": health,
        "finish_reason": reply.finish_reason,
    }
