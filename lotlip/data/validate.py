"""Bad training samples become counted skips (or, with ``strict``, one clear error naming the sample)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from lotlip.data.img2dataset import IMAGE_FIELDS
from lotlip.data.shards import decode_image

log = logging.getLogger(__name__)
CAPTION_KINDS = ("short", "long")


class BadSampleError(ValueError):
    """A training sample cannot be used (raised only in strict mode, or to signal a skip internally)."""


@dataclass
class SkipCounter:
    """Counts skipped samples by reason; in strict mode the first bad sample raises instead."""

    strict: bool = False
    counts: Counter = field(default_factory=Counter)

    def skip(self, where: str, reason: str, detail: str = "", n: int = 1) -> None:
        """Count ``n`` samples skipped at ``where`` for ``reason`` (warn on the reason's first skip)."""
        message = f"{where}: {reason}" + (f" ({detail})" if detail else "")
        if self.strict:
            raise BadSampleError(message)
        if self.counts[reason] == 0:
            log.warning("skipping bad sample %s; further '%s' skips are only counted", message, reason)
        self.counts[reason] += n

    def shard_error(self, exc: Exception) -> bool:
        """webdataset handler: count a broken shard member and continue (strict: re-raise)."""
        self.skip("shard", "unreadable_shard_data", f"{type(exc).__name__}: {exc}"[:200])
        return True


def parse_sample(sample: dict, max_caption_chars: int) -> tuple[Image.Image, str, dict[str, dict[str, str]]]:
    """(image, raw caption, {captioner: {"short", "long"}}) of a shard sample; raises BadSampleError(reason).

    Short and long captions get the same checks (text, at most ``max_caption_chars``); an empty caption is left
    out of its captioner's dict and a captioner with neither caption is left out.
    """
    image_field = next((f for f in IMAGE_FIELDS if f in sample), None)
    if image_field is None or "json" not in sample:
        raise BadSampleError("missing_field", "png" if image_field is None else "json")
    try:
        text = sample["json"].decode("utf-8") if isinstance(sample["json"], bytes) else sample["json"]
    except UnicodeDecodeError as exc:
        raise BadSampleError("bad_caption_encoding", str(exc)[:120]) from None
    try:
        meta = json.loads(text)
        raw = meta["raw"]
        captions = meta.get("captions", {})
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadSampleError("missing_caption", f"{type(exc).__name__}: {exc}"[:120]) from None
    if not isinstance(raw, str) or not raw.strip():
        raise BadSampleError("empty_caption", "raw caption is empty")
    if not isinstance(captions, dict):
        raise BadSampleError("missing_caption", f"captions is a {type(captions).__name__}, not a mapping")
    texts = {(name, kind): c.get(kind, "") for name, c in captions.items() if isinstance(c, dict)
             for kind in CAPTION_KINDS}
    not_text = [f"{kind} caption of {name}" for (name, kind), t in texts.items() if not isinstance(t, str)]
    if not_text:
        raise BadSampleError("missing_caption", f"{not_text[0]} is not text")
    too_long = [t for t in [raw, *texts.values()] if len(t) > max_caption_chars]
    if too_long:
        raise BadSampleError("caption_too_long", f"{len(too_long[0])} > {max_caption_chars} characters")
    kept: dict[str, dict[str, str]] = {}
    for (name, kind), t in texts.items():
        if t.strip():
            kept.setdefault(name, {})[kind] = t
    try:
        image = decode_image(sample[image_field])
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise BadSampleError("undecodable_image", str(exc)[:120]) from None
    return image, raw, kept
