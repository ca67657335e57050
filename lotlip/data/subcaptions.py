"""Caption cleaning and sub-caption sampling, as DreamLIP's ``CsvDataset`` does it.

Every caption is split into sentences on ``\\n``, ``</s>`` and ``.`` (stripped, empties dropped). The sentence
pool of an image concatenates, per captioner in DreamLIP's order (InstructBLIP, ShareGPT4V, LLaVA, then any other
captioner in sorted order; only those present and selected), its short then its long caption's sentences
(``pool="short+long"``, DreamLIP's) or only its long caption's (``pool="long"``).

With N long texts and m = ``merged_num`` sentences per text, ``draw(n, k)`` picks k start indices from
``range(n)``: distinct (``rng.sample``) when ``n >= k``, else with replacement (``rng.choices``). For m == 1 the
range is ``len(pool) - 1`` and a text is ``pool[i]``; for m > 1 it is ``len(pool) - m - 1`` and a text is
``". ".join(pool[i:i + m])``. So, as in DreamLIP, the last sentence (m == 1) or the last full window (m > 1) is
never drawn. The result is ``[raw, text_1, ..., text_N]``.

Policy ``across`` draws from the whole pool (a window may span two captioners); ``within`` picks a captioner per
text with ``rng.choice``, then draws each captioner's texts together from its own pool (so they are distinct
when its range allows).

Edge behaviours (DreamLIP's code crashes on the first two; here they are defined):

- empty range (``n <= 0``: at most one sentence for m == 1, at most m + 1 for m > 1): every text starts at 0,
  i.e. is ``". ".join(pool[:m])`` (the whole pool when it has at most m sentences);
- no sentence at all (no selected captioner has a non-empty caption): every text is the raw caption;
- N == 0: ``[raw]``, and the rng is not used.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping

SENTENCE_SPLIT = re.compile(r"\n|</s>|\.")
DREAMLIP_ORDER = ("instructblip", "sharegpt4v", "llava")  # the order of DreamLIP's caption columns
POLICIES = ("across", "within")
POOLS = {"short+long": ("short", "long"), "long": ("long",)}


def split_sentences(text: str) -> list[str]:
    """Non-empty stripped sentences of ``text``."""
    return [s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()]


def clean_caption(text: str) -> str:
    """The evaluation protocol's cleaning: split into sentences, rejoin with ``". "``."""
    return ". ".join(split_sentences(text))


def captioner_order(names: Iterable[str]) -> list[str]:
    """``names`` in DreamLIP's captioner order (InstructBLIP, ShareGPT4V, LLaVA), others after in sorted order."""
    names = set(names)
    return [c for c in DREAMLIP_ORDER if c in names] + sorted(names - set(DREAMLIP_ORDER))


def sentence_pools(captions: Mapping[str, Mapping[str, str]], pool: str = "short+long",
                   captioners: list[str] | None = None) -> dict[str, list[str]]:
    """Captioner -> its sentences (short then long, or long only), in captioner order; empty ones left out."""
    if pool not in POOLS:
        raise ValueError(f"sampling.pool: {pool!r} is not one of {', '.join(POOLS)}")
    names = captioner_order(captions if captioners is None else [c for c in captioners if c in captions])
    pools = {c: [s for kind in POOLS[pool] for s in split_sentences(captions[c].get(kind) or "")] for c in names}
    return {c: s for c, s in pools.items() if s}


def draw_starts(n: int, k: int, rng: random.Random) -> list[int]:
    """DreamLIP's ``draw_numbers``: k indices of ``range(n)``, distinct if ``n >= k``; all 0 if ``n <= 0``."""
    if k == 0:
        return []
    if n <= 0:
        return [0] * k
    return rng.sample(range(n), k) if n >= k else rng.choices(range(n), k=k)


def draw_windows(sentences: list[str], k: int, merged_num: int, rng: random.Random) -> list[str]:
    """k texts of ``merged_num`` consecutive sentences of ``sentences`` (DreamLIP's ranges, see the module)."""
    span = len(sentences) - 1 if merged_num == 1 else len(sentences) - merged_num - 1
    return [". ".join(sentences[i: i + merged_num]) for i in draw_starts(span, k, rng)]


def sample_texts(raw: str, captions: Mapping[str, Mapping[str, str]], n: int, merged_num: int, policy: str,
                 rng: random.Random, captioners: list[str] | None = None, pool: str = "short+long") -> list[str]:
    """``[raw, text_1, ..., text_n]`` for one image.

    Args:
        raw: the alt-text caption (first text, always).
        captions: captioner name -> ``{"short": ..., "long": ...}`` (a missing or empty caption adds nothing).
        n: number of long texts to draw (N).
        merged_num: consecutive sentences per long text (m).
        policy: ``across`` or ``within``.
        rng: the only source of randomness.
        captioners: which captioners to use (default: all present); the order is always DreamLIP's.
        pool: ``short+long`` (DreamLIP) or ``long``.
    """
    if policy not in POLICIES:
        raise ValueError(f"sampling.policy: {policy!r} is not one of {', '.join(POLICIES)}")
    pools = sentence_pools(captions, pool, captioners)
    if n == 0:
        return [raw]
    if not pools:
        return [raw] * (n + 1)  # nothing to sample: fall back to the raw caption
    if policy == "across":
        return [raw, *draw_windows([s for sentences in pools.values() for s in sentences], n, merged_num, rng)]
    picks = [rng.choice(list(pools)) for _ in range(n)]
    counts = Counter(picks)
    drawn = {c: iter(draw_windows(sentences, counts[c], merged_num, rng))
             for c, sentences in pools.items() if counts[c]}
    return [raw, *(next(drawn[c]) for c in picks)]
