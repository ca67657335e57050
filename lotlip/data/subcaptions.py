"""Caption cleaning and sub-caption sampling (DreamLIP/LoTLIP recipe).

MLLM captions are split into sentences on ``\\n``, ``</s>`` and ``.``; a long text for training is
``merged_num`` consecutive sentences joined with ``". "``, drawn from N start indices. Policy ``across`` pools
all captioners' sentences (the pool's neighbours may come from two captioners); ``within`` draws each long
text from one captioner's caption. The raw caption always comes first.
"""

from __future__ import annotations

import random
import re

SENTENCE_SPLIT = re.compile(r"\n|</s>|\.")


def split_sentences(text: str) -> list[str]:
    """Non-empty stripped sentences of ``text``."""
    return [s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()]


def clean_caption(text: str) -> str:
    """The evaluation protocol's cleaning: split into sentences, rejoin with ``". "``."""
    return ". ".join(split_sentences(text))


def _draw(sentences: list[str], merged_num: int, rng: random.Random) -> str:
    last_start = max(len(sentences) - merged_num, 0)
    start = rng.randint(0, last_start)
    return ". ".join(sentences[start: start + merged_num])


def sample_texts(raw: str, long_captions: dict[str, str], n: int, merged_num: int, policy: str,
                 rng: random.Random, captioners: list[str] | None = None) -> list[str]:
    """``[raw, long_1, ..., long_n]`` for one image.

    Args:
        raw: the alt-text caption (first text, always).
        long_captions: captioner name -> long caption.
        n: number of long texts to draw.
        merged_num: consecutive sentences per long text.
        policy: ``across`` or ``within``.
        captioners: which captioners to use (default: all present, in sorted order).
    """
    names = sorted(long_captions) if captioners is None else [c for c in captioners if c in long_captions]
    per_captioner = {c: split_sentences(long_captions[c]) for c in names}
    per_captioner = {c: s for c, s in per_captioner.items() if s}
    if n and not per_captioner:
        return [raw] + [raw] * n  # nothing to sample: fall back to the raw caption
    if policy == "across":
        pool = [s for c in per_captioner for s in per_captioner[c]]
        longs = [_draw(pool, merged_num, rng) for _ in range(n)]
    elif policy == "within":
        keys = list(per_captioner)
        longs = [_draw(per_captioner[rng.choice(keys)], merged_num, rng) for _ in range(n)]
    else:
        raise ValueError(f"sampling.policy: {policy!r} is not one of across, within")
    return [raw, *longs]
