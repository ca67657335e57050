"""A real captioner backend: a Hugging Face image-to-text / vision-language model through transformers.

``relabel_hf`` captions ``(key, image_path)`` items in batches with greedy decoding (by default) and appends one
JSON line per image to an output file as soon as its batch is done (flush + fsync). Rerunning it skips the keys
already in that file, so a crashed or pre-empted job resumes where it stopped; a truncated last line left by a
crash is dropped and its image captioned again. Each record is ``{"key", "captions": {name: {"short", "long"}}}``.

Models are loaded offline-first by ``load_hf_captioner``: ``AutoModelForImageTextToText`` (in transformers 5 it
also covers ``VisionEncoderDecoderModel``, BLIP, InstructBLIP and LLaVA; ``AutoModelForVision2Seq`` was removed)
plus ``AutoProcessor``, or an image processor + tokenizer pair for checkpoints that ship no processor config.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from lotlip.io import writing

log = logging.getLogger(__name__)

DEFAULT_LONG_PROMPT = "Describe the image in detail."  # the Recap-Long prompt (dataset cards)
DEFAULT_SHORT_PROMPT = "Describe the image in one short sentence."  # ours: the short prompt is not published
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError)


class BadImageError(ValueError):
    """An input image could not be read or decoded (raised in strict mode)."""


@dataclass
class HFRelabelStats:
    """What one ``relabel_hf`` call did."""

    captioned: int = 0  # images captioned and written by this call
    already_done: int = 0  # keys found in the output file (or repeated in the input) and skipped
    bad_images: list[str] = field(default_factory=list)  # paths that failed to decode (skipped)


class ImageTextProcessor:
    """An image processor + tokenizer pair, for checkpoints without a processor config (e.g. ViT-GPT2)."""

    chat_template = None

    def __init__(self, image_processor: Any, tokenizer: Any) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer

    def __call__(self, images: list, text: list[str] | None = None, return_tensors: str = "pt",
                 **_: Any) -> dict:
        if text is not None:
            raise ValueError("this captioner (image processor + tokenizer) takes no prompt; "
                             "set short_prompt and long_prompt to None")
        return dict(self.image_processor(images=images, return_tensors=return_tensors))

    def batch_decode(self, ids: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(ids, **kwargs)


def _torch_dtype(dtype: Any) -> Any:
    import torch

    if dtype is None or dtype == "auto" or not isinstance(dtype, str):
        return dtype
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"dtype: {dtype!r} is not a torch dtype (float32, float16, bfloat16, auto)")
    return value


def _load_model(name_or_path: str, local: bool, dtype: Any) -> Any:
    import transformers

    classes = [getattr(transformers, n, None) for n in ("AutoModelForImageTextToText", "AutoModelForVision2Seq")]
    errors = []
    kwargs = {"local_files_only": local} | ({} if dtype is None else {"dtype": dtype})
    for cls in filter(None, classes):
        try:
            return cls.from_pretrained(name_or_path, **kwargs)
        except ValueError as exc:  # config type not in this auto class's mapping
            errors.append(f"{cls.__name__}: {exc}")
    raise ValueError(f"{name_or_path}: not an image-to-text model ({'; '.join(errors)})")


def _load_processor(name_or_path: str, local: bool) -> Any:
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    processor = AutoProcessor.from_pretrained(name_or_path, local_files_only=local)
    if hasattr(processor, "image_processor") and hasattr(processor, "tokenizer"):
        return processor
    return ImageTextProcessor(AutoImageProcessor.from_pretrained(name_or_path, local_files_only=local),
                              AutoTokenizer.from_pretrained(name_or_path, local_files_only=local))


def load_hf_captioner(name_or_path: str | Path, device: str = "cpu", dtype: Any = None,
                      local_files_only: bool | None = None) -> tuple[Any, Any]:
    """``(model, processor)`` of an image-to-text checkpoint, in eval mode on ``device``.

    A local folder is read with ``local_files_only=True``; a hub id only resolves from the local HF cache
    when offline (set ``HF_HUB_OFFLINE=1`` there, or pass ``local_files_only=True``). ``dtype``: None (the
    checkpoint's default), ``"auto"``, a name like ``"bfloat16"`` or a ``torch.dtype``.
    """
    name = str(name_or_path)
    local = Path(name).exists() if local_files_only is None else local_files_only
    try:
        model = _load_model(name, local, _torch_dtype(dtype))
        processor = _load_processor(name, local)
    except OSError as exc:
        where = "local folder" if local else "hub id (offline: it must already be in the HF cache)"
        raise OSError(f"{name}: could not load the captioner from this {where}: {exc}") from exc
    return model.to(device).eval(), processor


def _load_image(path: str | Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def _done_keys(path: Path, captioner_name: str) -> set[str]:
    """Keys already written to ``path``; a truncated trailing line (crash) is cut off the file."""
    if not path.is_file():
        return set()
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        log.warning("%s: dropping a truncated last line (%d bytes) left by an interrupted run", path,
                    len(data) - end)
        os.truncate(path, end)
    keys = set()
    for lineno, line in enumerate(data[:end].decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg}); remove the line to resume") from None
        if "key" not in record or captioner_name not in record.get("captions", {}):
            raise ValueError(f"{path}:{lineno}: no key or no {captioner_name!r} captions; the file belongs to "
                             f"another captioner or tool")
        keys.add(record["key"])
    return keys


def format_prompt(processor: Any, prompt: str | None, chat_template: bool | None = None) -> str | None:
    """``prompt`` wrapped in the processor's chat template (one user turn: image + text), if it has one.

    ``chat_template``: None uses the template when the processor has one, True requires it, False never.
    """
    if prompt is None or chat_template is False:
        return prompt
    if not getattr(processor, "chat_template", None):
        if chat_template:
            raise ValueError("chat_template=True but the processor has no chat template")
        return prompt
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def strip_prompt(out: Any, input_ids: Any) -> list[list[int]]:
    """Generated ids without the echoed prompt: each row loses its longest common prefix with the input.

    Decoder-only models echo the whole (left-padded) prompt, BLIP echoes it less its final [SEP], and
    encoder-decoder models echo nothing; the common prefix covers all three.
    """
    n = min(out.shape[1], input_ids.shape[1])
    same = (out[:, :n] == input_ids[:, :n].to(out.device)).long().cumprod(dim=1).sum(dim=1)
    return [row[k:].tolist() for row, k in zip(out, same.tolist(), strict=True)]


def _to_model(inputs: Any, model: Any) -> dict:
    import torch

    moved = {}
    for name, value in dict(inputs).items():
        if torch.is_tensor(value):
            value = value.to(model.device)
            if value.is_floating_point():
                value = value.to(model.dtype)
        moved[name] = value
    return moved


def generate_captions(model: Any, processor: Any, images: list[Image.Image], prompt: str | None,
                      max_new_tokens: int, generate_kwargs: dict | None = None) -> list[str]:
    """One caption per image (same prompt for the whole batch), prompt echo removed, whitespace stripped."""
    import torch

    call: dict[str, Any] = {"images": images, "return_tensors": "pt"}
    if prompt is not None:
        call.update(text=[prompt] * len(images), padding=True)
    inputs = _to_model(processor(**call), model)
    kwargs = {"do_sample": False, "num_beams": 1, **(generate_kwargs or {})}
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, **kwargs)
    ids = strip_prompt(out, inputs["input_ids"]) if "input_ids" in inputs else out.tolist()
    decode = getattr(processor, "batch_decode", None) or processor.tokenizer.batch_decode
    return [text.strip() for text in decode(ids, skip_special_tokens=True)]


@dataclass
class _Captioner:
    model: Any
    processor: Any
    short_prompt: str | None
    long_prompt: str | None
    max_new_tokens: int
    short_max_new_tokens: int
    generate_kwargs: dict | None

    def __call__(self, images: list[Image.Image]) -> list[dict[str, str]]:
        longs = generate_captions(self.model, self.processor, images, self.long_prompt, self.max_new_tokens,
                                  self.generate_kwargs)
        if self.short_max_new_tokens <= 0:
            shorts = [""] * len(images)
        elif (self.short_prompt, self.short_max_new_tokens) == (self.long_prompt, self.max_new_tokens):
            shorts = longs
        else:
            shorts = generate_captions(self.model, self.processor, images, self.short_prompt,
                                       self.short_max_new_tokens, self.generate_kwargs)
        return [{"short": s, "long": t} for s, t in zip(shorts, longs, strict=True)]


def _batches(items: Iterable[tuple[str, str | Path]], done: set[str], batch_size: int, strict: bool,
             stats: HFRelabelStats) -> Iterator[tuple[list[str], list[Image.Image]]]:
    """Batches of (keys, decoded images) still to caption; bad images are counted (or raise when strict)."""
    keys: list[str] = []
    images: list[Image.Image] = []
    for key, path in items:
        if key in done:
            stats.already_done += 1
            continue
        try:
            image = _load_image(path)
        except _IMAGE_ERRORS as exc:
            if strict:
                raise BadImageError(f"{path}: cannot decode image for key {key!r} ({exc})") from exc
            log.warning("%s: skipping undecodable image for key %r (%s)", path, key, exc)
            stats.bad_images.append(str(path))
            continue
        done.add(key)
        keys.append(key)
        images.append(image)
        if len(keys) == batch_size:
            yield keys, images
            keys, images = [], []
    if keys:
        yield keys, images


def relabel_hf(items: Iterable[tuple[str, str | Path]], out_jsonl: str | Path, model: Any, processor: Any, *,
               captioner_name: str, short_prompt: str | None = None, long_prompt: str | None = None,
               batch_size: int = 8, max_new_tokens: int = 256, short_max_new_tokens: int = 48,
               device: str | None = None, chat_template: bool | None = None,
               generate_kwargs: dict | None = None, strict: bool = False) -> HFRelabelStats:
    """Caption ``(key, image_path)`` items into ``out_jsonl`` (appended per batch, resumable).

    Args:
        model, processor: built transformers objects (see ``load_hf_captioner``).
        captioner_name: the name the captions are stored under (e.g. ``llava``).
        short_prompt, long_prompt: prompts of the two captions; None for models that take no prompt.
        max_new_tokens, short_max_new_tokens: token budgets of the long and short caption (0: no short one).
        device: move the model there first (default: leave it where it is).
        chat_template: wrap prompts in the processor's chat template (None: when it has one).
        generate_kwargs: extra ``generate`` arguments (default greedy: ``do_sample=False, num_beams=1``).
        strict: an undecodable image raises ``BadImageError`` instead of being counted and skipped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} must be at least 1")
    out_jsonl = Path(out_jsonl)
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    if device is not None:
        model.to(device)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None and not getattr(model.config, "is_encoder_decoder", False):
        tokenizer.padding_side = "left"  # decoder-only generation continues from the right end
    caption = _Captioner(model, processor, format_prompt(processor, short_prompt, chat_template),
                         format_prompt(processor, long_prompt, chat_template), max_new_tokens,
                         short_max_new_tokens, generate_kwargs)
    stats = HFRelabelStats()
    done = _done_keys(out_jsonl, captioner_name)
    with writing(out_jsonl), open(out_jsonl, "a", encoding="utf-8") as fh:  # a full disk names the file
        for keys, images in _batches(items, done, batch_size, strict, stats):
            captions = caption(images)
            fh.write("".join(json.dumps({"key": k, "captions": {captioner_name: c}}, sort_keys=True) + "\n"
                             for k, c in zip(keys, captions, strict=True)))
            fh.flush()
            os.fsync(fh.fileno())
            stats.captioned += len(keys)
    log.info("%s: captioned %d images, %d already done, %d bad", captioner_name, stats.captioned,
             stats.already_done, len(stats.bad_images))
    return stats


def hf_backend(scenes: Iterable[Any], captioners: list[str], seed: int, *, images_dir: str | Path,
               work_dir: str | Path, models: dict[str, str], device: str = "cpu", dtype: Any = None,
               short_prompt: str | None = DEFAULT_SHORT_PROMPT, long_prompt: str | None = DEFAULT_LONG_PROMPT,
               batch_size: int = 8, max_new_tokens: int = 256, short_max_new_tokens: int = 48,
               strict: bool = False) -> Iterator[dict]:
    """Backend form: caption ``images_dir/<key>.png`` with one HF model per captioner name.

    Each captioner resumes from ``work_dir/<name>.jsonl``; records merge every captioner that captioned the
    image (an image no captioner could read is left out). ``seed`` only matters with sampling decoding.
    """
    import torch

    from lotlip.io import read_jsonl

    missing = [name for name in captioners if name not in models]
    if missing:
        raise ValueError(f"relabel.hf.models: no model given for captioner {missing[0]!r}")
    keys = [scene.key for scene in scenes]
    items = [(key, Path(images_dir) / f"{key}.png") for key in keys]
    merged: dict[str, dict] = {}
    for name in captioners:
        torch.manual_seed(seed)
        model, processor = load_hf_captioner(models[name], device, dtype)
        out = Path(work_dir) / f"{name}.jsonl"
        relabel_hf(items, out, model, processor, captioner_name=name, short_prompt=short_prompt,
                   long_prompt=long_prompt, batch_size=batch_size, max_new_tokens=max_new_tokens,
                   short_max_new_tokens=short_max_new_tokens, strict=strict)
        del model, processor
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        for record in read_jsonl(out):
            merged.setdefault(record["key"], {})[name] = record["captions"][name]
    for key in keys:
        if key in merged:
            yield {"key": key, "captions": merged[key]}
