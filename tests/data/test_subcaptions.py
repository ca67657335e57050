"""Sub-caption sampling as DreamLIP's CsvDataset does it: pool order, draw ranges, edges, pool and policy knobs."""

import csv
import json
import random

import pytest

from lotlip.data.subcaptions import (
    captioner_order,
    clean_caption,
    draw_starts,
    sample_texts,
    sentence_pools,
    split_sentences,
)
from lotlip.relabel.precomputed import read_precomputed


def test_split_on_newline_eos_and_period():
    assert split_sentences("A cat. A dog\nA bird</s>  A fish.") == ["A cat", "A dog", "A bird", "A fish"]
    assert clean_caption("A cat.\nA dog.") == "A cat. A dog"


# two sentences per short caption, three per long one; names say where a sentence came from
CAPTIONS = {c: {"short": f"{c}-s0. {c}-s1", "long": f"{c}-l0. {c}-l1\n{c}-l2"} for c in ("llava", "sharegpt4v",
                                                                                      "instructblip")}
POOL = [f"{c}-{k}" for c in ("instructblip", "sharegpt4v", "llava") for k in ("s0", "s1", "l0", "l1", "l2")]


def _dreamlip(pool: list[str], n: int, m: int, rng: random.Random) -> list[str]:
    """The reference: DreamLIP's draw_numbers + window join (valid only when its range is non-empty)."""
    def draw(size: int, k: int) -> list[int]:
        population = list(range(size))
        return rng.sample(population, k) if size >= k else rng.choices(population, k=k)

    if m == 1:
        return [pool[i] for i in draw(len(pool) - 1, n)]
    return [". ".join(pool[i:i + m]) for i in draw(len(pool) - m - 1, n)]


def _pool(captions, **kwargs) -> list[str]:
    return [s for sentences in sentence_pools(captions, **kwargs).values() for s in sentences]


def test_dreamlip_row_gives_its_pool_order(tmp_path):
    header = ["Image Path", "raw_caption", "shortIB_captions", "longIB_captions", "shortSV_captions",
              "longSV_captions", "shortLLA_captions", "longLLA_captions"]
    row = ["http://example.com/0.jpg", "alt text", "IB short. IB short two", "IB long one. IB long two",
           "SV short", "SV long one\nSV long two</s>SV long three", "LLA short.", "LLA long one. LLA long two."]
    path = tmp_path / "cc3m_3long_3short_1raw_captions_url.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([header, row])
    (record,) = read_precomputed(path, "dreamlip")
    record = json.loads(json.dumps(record, sort_keys=True))  # as stored in captions.jsonl: keys sorted
    assert list(record["captions"]) == ["instructblip", "llava", "sharegpt4v"]
    assert _pool(record["captions"]) == [
        "IB short", "IB short two", "IB long one", "IB long two",
        "SV short", "SV long one", "SV long two", "SV long three",
        "LLA short", "LLA long one", "LLA long two"]
    assert _pool(record["captions"], pool="long") == [
        "IB long one", "IB long two", "SV long one", "SV long two", "SV long three", "LLA long one", "LLA long two"]
    assert captioner_order(["llava", "zeta", "sharegpt4v", "alpha", "instructblip"]) == [
        "instructblip", "sharegpt4v", "llava", "alpha", "zeta"]


@pytest.mark.parametrize("n, m", [(1, 1), (3, 1), (14, 1), (20, 1), (3, 2), (12, 2), (13, 2), (20, 2), (4, 5)])
def test_across_matches_dreamlip_draw_exactly(n, m):
    assert _pool(CAPTIONS) == POOL
    for seed in range(30):
        texts = sample_texts("raw", CAPTIONS, n, m, "across", random.Random(seed))
        assert texts == ["raw", *_dreamlip(POOL, n, m, random.Random(seed))]


def test_windows_are_distinct_when_the_range_allows():
    for seed in range(100):
        texts = sample_texts("raw", CAPTIONS, 12, 2, "across", random.Random(seed))[1:]  # range 15 - 3 = 12
        assert len(set(texts)) == 12 and all(len(t.split(". ")) == 2 for t in texts)
        assert len(set(draw_starts(5, 5, random.Random(seed)))) == 5


def test_a_range_smaller_than_n_draws_with_replacement():
    captions = {"llava": {"long": "a. b. c. d"}}  # m = 1: range 3 < N = 6
    seen = set()
    for seed in range(100):
        texts = sample_texts("raw", captions, 6, 1, "across", random.Random(seed))[1:]
        assert len(texts) == 6 and len(set(texts)) < 6 and set(texts) <= {"a", "b", "c"}
        seen.update(texts)
    assert seen == {"a", "b", "c"}


def test_the_last_window_is_never_drawn():
    windows, singles = set(), set()
    for seed in range(500):
        windows.update(sample_texts("raw", CAPTIONS, 2, 3, "across", random.Random(seed))[1:])
        singles.update(sample_texts("raw", CAPTIONS, 2, 1, "across", random.Random(seed))[1:])
    starts = range(len(POOL) - 3 - 1)  # DreamLIP's range: the last two starts (last full window) never drawn
    assert windows == {". ".join(POOL[i:i + 3]) for i in starts}
    assert ". ".join(POOL[-3:]) not in windows
    assert singles == set(POOL[:-1]) and POOL[-1] not in singles


def test_empty_range_starts_every_text_at_the_first_sentence():
    one = {"llava": {"short": "only one."}}
    assert sample_texts("raw", one, 3, 1, "across", random.Random(0)) == ["raw"] + ["only one"] * 3
    three = {"llava": {"short": "a", "long": "b. c"}}  # m = 2: range 3 - 2 - 1 = 0
    assert sample_texts("raw", three, 2, 2, "across", random.Random(0)) == ["raw", "a. b", "a. b"]
    assert sample_texts("raw", three, 2, 5, "within", random.Random(0)) == ["raw", "a. b. c", "a. b. c"]
    assert draw_starts(0, 3, random.Random(0)) == draw_starts(-2, 3, random.Random(0)) == [0, 0, 0]


def test_no_sentences_or_no_texts():
    assert sample_texts("raw", CAPTIONS, 0, 3, "across", random.Random(0)) == ["raw"]
    empty = {"a": {"short": " . ", "long": "\n"}, "b": {}}
    assert sample_texts("raw", empty, 2, 3, "across", random.Random(0)) == ["raw", "raw", "raw"]
    assert sample_texts("raw", {"a": {"short": "s"}}, 2, 1, "across", random.Random(0), pool="long") == ["raw"] * 3
    with pytest.raises(ValueError, match="sampling.policy"):
        sample_texts("raw", CAPTIONS, 1, 1, "diagonal", random.Random(0))
    with pytest.raises(ValueError, match="sampling.pool"):
        sample_texts("raw", CAPTIONS, 1, 1, "across", random.Random(0), pool="short")


def test_pool_long_excludes_short_sentences():
    seen = set()
    for seed in range(200):
        for policy in ("across", "within"):
            seen.update(s for t in sample_texts("raw", CAPTIONS, 4, 2, policy, random.Random(seed), pool="long")[1:]
                        for s in t.split(". "))
    assert seen and all("-l" in s for s in seen)
    default = {s for seed in range(50)
               for t in sample_texts("raw", CAPTIONS, 4, 2, "across", random.Random(seed))[1:] for s in t.split(". ")}
    assert any("-s" in s for s in default)


def test_within_stays_in_one_captioner_and_across_may_span_two():
    within, across = set(), set()
    for seed in range(300):
        within.update(sample_texts("raw", CAPTIONS, 4, 2, "within", random.Random(seed))[1:])
        across.update(sample_texts("raw", CAPTIONS, 4, 2, "across", random.Random(seed))[1:])
    owners = [{s.split("-")[0] for s in t.split(". ")} for t in within]
    assert all(len(o) == 1 for o in owners) and set().union(*owners) == set(CAPTIONS)
    assert "instructblip-l2. sharegpt4v-s0" in across  # neighbours across the captioner boundary
    for seed in range(50):  # one captioner's texts are distinct when its range (5 - 2 - 1 = 2) allows
        texts = sample_texts("raw", {"llava": CAPTIONS["llava"]}, 2, 2, "within", random.Random(seed))[1:]
        assert sorted(texts) == ["llava-s0. llava-s1", "llava-s1. llava-l0"]


def test_deterministic_given_rng_and_captioner_subset():
    a = sample_texts("raw", CAPTIONS, 4, 1, "across", random.Random(3), captioners=["sharegpt4v"])
    assert a == sample_texts("raw", CAPTIONS, 4, 1, "across", random.Random(3), captioners=["sharegpt4v"])
    assert all(t.startswith("sharegpt4v") for t in a[1:])
    both = _pool(CAPTIONS, captioners=["llava", "instructblip"])  # DreamLIP's order, not the argument's
    assert both == [s for s in POOL if not s.startswith("sharegpt4v")]
