"""The Hugging Face captioner backend on tiny randomly initialised models built offline (garbage words, real path)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from lotlip.io import read_jsonl
from lotlip.relabel.hf import (
    BadImageError,
    ImageTextProcessor,
    format_prompt,
    hf_backend,
    load_hf_captioner,
    relabel_hf,
    strip_prompt,
)

WORDS = "a the red blue green circle square triangle on in of background image shows there is small large".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
COLOURS = [(220, 40, 40), (40, 170, 60), (40, 80, 220), (235, 215, 40), (20, 20, 20)]


def _tokenizer():
    from transformers import BertTokenizer

    return BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)})


@pytest.fixture(scope="module")
def vit_bert_dir(tmp_path_factory) -> Path:
    """A tiny ViT -> BERT VisionEncoderDecoderModel saved like ViT-GPT2 checkpoints (no processor config)."""
    from transformers import (
        BertConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    path = tmp_path_factory.mktemp("vit-bert")
    tok = _tokenizer()
    encoder = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)
    decoder = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, is_decoder=True,
                         add_cross_attention=True)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config)
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = (tok.cls_token_id, tok.pad_token_id,
                                                                          tok.sep_token_id)
    model.save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def captioner(vit_bert_dir):
    return load_hf_captioner(vit_bert_dir, device="cpu", dtype="float32")


@pytest.fixture
def images(tmp_path) -> list[tuple[str, Path]]:
    items = []
    for i, colour in enumerate(COLOURS):
        path = tmp_path / "images" / f"k{i}.png"
        path.parent.mkdir(exist_ok=True)
        img = Image.new("RGB", (24 + 8 * i, 32), colour)
        img.paste((255 - colour[0], 128, colour[2]), (0, 0, 8 + 2 * i, 12))
        img.save(path)
        items.append((f"k{i}", path))
    return items


def _run(items, out, captioner, **kw):
    model, processor = captioner
    kw = {"captioner_name": "vitbert", "batch_size": 2, "max_new_tokens": 12, "short_max_new_tokens": 4, **kw}
    return relabel_hf(items, out, model, processor, **kw)


class _CountingGenerate:
    """Wraps ``model.generate``: counts images seen, raises after ``fail_after`` calls."""

    def __init__(self, model, fail_after: int | None = None):
        self.model, self.orig, self.fail_after = model, model.generate, fail_after
        self.calls, self.images = 0, 0

    def __enter__(self):
        def generate(**inputs):
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise RuntimeError("simulated crash")
            self.calls += 1
            self.images += inputs["pixel_values"].shape[0]
            return self.orig(**inputs)

        self.model.generate = generate
        return self

    def __exit__(self, *exc):
        del self.model.generate  # back to the class method


def test_loads_through_auto_classes(captioner):
    model, processor = captioner
    assert type(model).__name__ == "VisionEncoderDecoderModel"
    assert isinstance(processor, ImageTextProcessor)  # no processor config: image processor + tokenizer
    assert not model.training


def test_captions_every_key_deterministically(tmp_path, images, captioner):
    stats = _run(images, tmp_path / "a.jsonl", captioner)
    _run(images, tmp_path / "b.jsonl", captioner)
    records = read_jsonl(tmp_path / "a.jsonl")
    assert [r["key"] for r in records] == [k for k, _ in images]
    assert stats.captioned == len(images) and stats.already_done == 0 and stats.bad_images == []
    for r in records:
        caption = r["captions"]["vitbert"]
        assert set(caption) == {"short", "long"}
        assert isinstance(caption["long"], str) and caption["long"]
        assert len(caption["short"].split()) <= 4
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_resume_after_crash_and_truncated_line(tmp_path, images, captioner):
    out = tmp_path / "caps.jsonl"
    model = captioner[0]
    with _CountingGenerate(model, fail_after=2), pytest.raises(RuntimeError, match="simulated crash"):
        _run(images, out, captioner)  # batch 1: short + long pass, then the crash
    assert [r["key"] for r in read_jsonl(out)] == ["k0", "k1"]
    with open(out, "a") as fh:
        fh.write('{"captions": {"vitbert": {"long": "a red')  # a crash mid-write
    with _CountingGenerate(model) as counter:
        stats = _run(images, out, captioner)
    assert counter.images == 2 * 3  # only k2..k4, two passes each: nothing captioned twice
    assert stats.captioned == 3 and stats.already_done == 2
    keys = [r["key"] for r in read_jsonl(out)]
    assert keys == ["k0", "k1", "k2", "k3", "k4"]
    _run(images, tmp_path / "straight.jsonl", captioner)
    assert out.read_text() == (tmp_path / "straight.jsonl").read_text()
    with _CountingGenerate(model) as counter:
        assert _run(images, out, captioner).already_done == 5
    assert counter.calls == 0


def test_undecodable_image_is_a_counted_skip(tmp_path, images, captioner, caplog):
    bad = tmp_path / "images" / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    missing = tmp_path / "images" / "missing.png"
    items = [images[0], ("bad", bad), ("missing", missing), images[1]]
    with caplog.at_level(logging.WARNING, logger="lotlip.relabel.hf"):
        stats = _run(items, tmp_path / "caps.jsonl", captioner)
    assert stats.bad_images == [str(bad), str(missing)] and stats.captioned == 2
    assert "bad.png" in caplog.text
    assert [r["key"] for r in read_jsonl(tmp_path / "caps.jsonl")] == ["k0", "k1"]
    with pytest.raises(BadImageError, match=r"bad\.png.*'bad'"):
        _run(items, tmp_path / "strict.jsonl", captioner, strict=True)


def test_output_of_another_captioner_or_corrupt_is_refused(tmp_path, images, captioner):
    out = tmp_path / "caps.jsonl"
    out.write_text(json.dumps({"key": "k0", "captions": {"llava": {"short": "", "long": "x"}}}) + "\n")
    with pytest.raises(ValueError, match="another captioner"):
        _run(images, out, captioner)
    out.write_text("{not json\n" + json.dumps({"key": "k0", "captions": {"vitbert": {}}}) + "\n")
    with pytest.raises(ValueError, match=r"caps\.jsonl:1: not valid JSON"):
        _run(images, out, captioner)


def test_prompt_is_refused_by_promptless_pair(tmp_path, images, captioner):
    with pytest.raises(ValueError, match="takes no prompt"):
        _run(images, tmp_path / "caps.jsonl", captioner, long_prompt="Describe the image in detail.")


def test_strip_prompt_drops_the_echo():
    inputs = torch.tensor([[0, 0, 5, 6, 7], [0, 5, 6, 7, 8]])
    decoder_only = torch.tensor([[0, 0, 5, 6, 7, 9, 10], [0, 5, 6, 7, 8, 11, 3]])
    assert strip_prompt(decoder_only, inputs) == [[9, 10], [11, 3]]
    blip_like = torch.tensor([[2, 5, 7, 9, 9], [2, 5, 7, 3, 0]])  # echoes the prompt less its last [SEP]
    # a generated [SEP] right after the prompt matches the prompt's own [SEP]: cut too, same decoded text
    assert strip_prompt(blip_like, torch.tensor([[2, 5, 7, 3], [2, 5, 7, 3]])) == [[9, 9], [0]]
    assert strip_prompt(torch.tensor([[1, 4]]), torch.tensor([[2, 5, 7]])) == [[1, 4]]


def test_format_prompt_uses_chat_template_when_present():
    seen = []

    def apply(messages, add_generation_prompt, tokenize):
        seen.append(messages)
        return f"USER: <image>\n{messages[0]['content'][1]['text']} ASSISTANT:"

    chat = SimpleNamespace(chat_template="{{ messages }}", apply_chat_template=apply)
    assert format_prompt(chat, "Describe.") == "USER: <image>\nDescribe. ASSISTANT:"
    assert seen[0][0]["content"][0] == {"type": "image"}
    assert format_prompt(chat, "Describe.", chat_template=False) == "Describe."
    assert format_prompt(chat, None) is None
    plain = SimpleNamespace(chat_template=None)
    assert format_prompt(plain, "Describe.") == "Describe."
    with pytest.raises(ValueError, match="no chat template"):
        format_prompt(plain, "Describe.", chat_template=True)


def test_prompted_model_blip(tmp_path, images):
    """A prompted captioner (tiny BLIP + its processor): the echoed prompt is cut from the captions."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tok = _tokenizer()
    text = {"vocab_size": len(VOCAB), "hidden_size": 32, "encoder_hidden_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
            "bos_token_id": tok.cls_token_id, "sep_token_id": tok.sep_token_id, "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.sep_token_id}
    vision = {"hidden_size": 32, "image_size": 32, "patch_size": 8, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 64}
    torch.manual_seed(0)
    BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32)
                                 ).save_pretrained(tmp_path / "blip")
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok
                  ).save_pretrained(tmp_path / "blip")
    model, processor = load_hf_captioner(tmp_path / "blip")
    assert type(processor).__name__ == "BlipProcessor"
    prompt = "the image shows"
    with _CountingGenerate(model) as counter:
        stats = relabel_hf(images, tmp_path / "caps.jsonl", model, processor, captioner_name="blip",
                           short_prompt=prompt, long_prompt=prompt, batch_size=3, max_new_tokens=6,
                           short_max_new_tokens=6)
    assert stats.captioned == 5 and counter.calls == 2  # same prompt and budget: one pass serves both
    inputs = processor(images=[Image.open(images[0][1]).convert("RGB")], text=[prompt], return_tensors="pt")
    full = processor.batch_decode(model.generate(**inputs, max_new_tokens=6, do_sample=False),
                                  skip_special_tokens=True)[0]
    caption = read_jsonl(tmp_path / "caps.jsonl")[0]["captions"]["blip"]
    assert full.startswith(prompt) and caption["long"] == full[len(prompt):].strip() == caption["short"]


def test_backend_merges_captioners(tmp_path, images, vit_bert_dir):
    scenes = [SimpleNamespace(key=k) for k, _ in images]
    with pytest.raises(ValueError, match="no model given for captioner 'llava'"):
        list(hf_backend(scenes, ["llava"], 0, images_dir=tmp_path / "images", work_dir=tmp_path, models={}))
    records = list(hf_backend(scenes, ["llava", "sharegpt4v"], 0, images_dir=tmp_path / "images",
                              work_dir=tmp_path / "work", models={"llava": str(vit_bert_dir),
                                                                  "sharegpt4v": str(vit_bert_dir)},
                              short_prompt=None, long_prompt=None, max_new_tokens=8, short_max_new_tokens=0))
    assert [r["key"] for r in records] == [k for k, _ in images]
    assert set(records[0]["captions"]) == {"llava", "sharegpt4v"}
    assert records[0]["captions"]["llava"]["short"] == ""
    assert (tmp_path / "work" / "llava.jsonl").is_file()
