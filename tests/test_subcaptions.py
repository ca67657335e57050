import random

import pytest

from lotlip.data.subcaptions import clean_caption, sample_texts, split_sentences


def test_split_on_newline_eos_and_period():
    assert split_sentences("A cat. A dog\nA bird</s>  A fish.") == ["A cat", "A dog", "A bird", "A fish"]
    assert clean_caption("A cat.\nA dog.") == "A cat. A dog"


LONGS = {"a": "a1. a2. a3. a4", "b": "b1. b2. b3"}


def test_raw_first_then_n_texts_of_consecutive_sentences():
    texts = sample_texts("raw", LONGS, n=5, merged_num=2, policy="within", rng=random.Random(0))
    assert texts[0] == "raw" and len(texts) == 6
    for t in texts[1:]:
        first, second = t.split(". ")
        assert first[0] == second[0] and int(second[1]) == int(first[1]) + 1


def test_across_pools_captioners_so_a_text_may_span_two():
    spans = set()
    for seed in range(200):
        for t in sample_texts("raw", LONGS, n=3, merged_num=2, policy="across", rng=random.Random(seed))[1:]:
            spans.add(t)
    assert "a4. b1" in spans  # neighbours across the captioner boundary
    within = set()
    for seed in range(200):
        within.update(sample_texts("raw", LONGS, 3, 2, "within", random.Random(seed))[1:])
    assert "a4. b1" not in within


def test_deterministic_given_rng_and_captioner_subset():
    a = sample_texts("raw", LONGS, 4, 1, "across", random.Random(3), captioners=["b"])
    assert a == sample_texts("raw", LONGS, 4, 1, "across", random.Random(3), captioners=["b"])
    assert all(t.startswith("b") for t in a[1:])


def test_zero_long_texts_and_empty_captions():
    assert sample_texts("raw", LONGS, 0, 3, "across", random.Random(0)) == ["raw"]
    assert sample_texts("raw", {"a": " . "}, 2, 3, "across", random.Random(0)) == ["raw", "raw", "raw"]
    with pytest.raises(ValueError, match="sampling.policy"):
        sample_texts("raw", LONGS, 1, 1, "diagonal", random.Random(0))
