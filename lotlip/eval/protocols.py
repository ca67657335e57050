"""Named evaluation protocols: which set, whose definition, its size, task, text cleaning and truncation.

Each protocol reads one real source of :data:`lotlip.catalog.SOURCES` (the loaders of
:mod:`lotlip.data.benchmarks`, files under the data root of ``config/datasets.yaml``). Sizes are the published ones
(LoTLIP Table 1, FACTS.md; the annotation files' sizes); ``lotlip benchmark`` enforces them on a full download.
Torch-free: ``lotlip benchmark --help`` prints :func:`describe`.
"""

from __future__ import annotations

from dataclasses import dataclass

CLEANING = {
    "long": ("split on '\\n', '</s>' and '.', strip, rejoin with '. ' (LoTLIP's released eval); then the model's "
             "tokenizer cleaning (release BERT: '. ' -> [SEP], ftfy, HTML unescape x2, whitespace collapse)"),
    "short": "raw captions, stripped; then the model's tokenizer cleaning",
    "prompts": "class names written into the 80 templates; then the model's tokenizer cleaning",
}
LONG_CLEANING, SHORT_CLEANING = "long", "short"
TRUNCATION = ("to the model's context length: release BERT 128 ([SEP] kept last), OpenAI CLIP 77 and "
              "Long-CLIP 248 (end-of-text kept last)")


@dataclass(frozen=True)
class EvalProtocol:
    """One named protocol; ``source`` is its key in :data:`lotlip.catalog.SOURCES`."""

    name: str
    source: str
    task: str  # long_retrieval | short_retrieval | zeroshot_classification
    n_images: int
    n_texts: int  # texts (retrieval) or classes (zero-shot)
    defined_by: str
    data: str
    cleaning: str  # a key of CLEANING
    truncation: str = TRUNCATION

    @property
    def clip_benchmark_task(self) -> str:
        """CLIP_benchmark's task name."""
        return "zeroshot_classification" if self.task == "zeroshot_classification" else "zeroshot_retrieval"


PROTOCOLS: dict[str, EvalProtocol] = {p.name: p for p in (
    EvalProtocol("dci", "dci", "long_retrieval", 7805, 7805,
                 "LoTLIP (all splits 7,599 + 98 + 108; text short_caption + '\\n' + extra_caption)",
                 "<root>/dci: Meta densely_captioned_images + SA-1B photos", LONG_CLEANING),
    EvalProtocol("iiw", "iiw", "long_retrieval", 612, 612,
                 "LoTLIP (IIW-400 400 + DCI_Test 112 + DOCCI_Test 100, text field IIW)",
                 "<root>/iiw jsonl + DCI and DOCCI (+ AAR) images", LONG_CLEANING),
    EvalProtocol("sharegpt4v-1k", "sharegpt4v-1k", "long_retrieval", 1000, 1000,
                 "LoTLIP (first 1k of share4v_sam_10k.json, text conversations[1].value)",
                 "<root>/sharegpt4v/share4v_sam_10k.json + <root>/sa1b", LONG_CLEANING),
    EvalProtocol("sharegpt4v-10k", "sharegpt4v-10k", "long_retrieval", 10000, 10000,
                 "LoTLIP (first 10k of share4v_sam_10k.json, text conversations[1].value)",
                 "<root>/sharegpt4v/share4v_sam_10k.json + <root>/sa1b", LONG_CLEANING),
    EvalProtocol("urban1k", "urban1k", "long_retrieval", 1000, 1000,
                 "Long-CLIP (Urban1k: image/, caption/ first line), as evaluated by LoTLIP",
                 "<root>/urban1k/Urban1k", LONG_CLEANING),
    EvalProtocol("docci", "docci", "long_retrieval", 5000, 5000,
                 "DOCCI test split (field description)",
                 "<root>/docci: docci_descriptions.jsonlines + images/", LONG_CLEANING),
    EvalProtocol("coco-5k", "mscoco-5k", "short_retrieval", 5000, 25000,
                 "Karpathy MSCOCO test split, 5 captions per image (R@1, R@5)",
                 "<root>/karpathy/dataset_coco.json + <root>/coco/val2014", SHORT_CLEANING),
    EvalProtocol("flickr-1k", "flickr30k-1k", "short_retrieval", 1000, 5000,
                 "Karpathy Flickr30k test split, 5 captions per image (R@1, R@5)",
                 "<root>/karpathy/dataset_flickr30k.json + <root>/flickr30k", SHORT_CLEANING),
    EvalProtocol("flickr-full", "flickr30k-full", "short_retrieval", 31783, 158915,
                 "Long-CLIP (the whole Flickr30k token file results_20130124.token, 5 captions per image)",
                 "<root>/flickr30k: results_20130124.token + the jpgs", SHORT_CLEANING),
    EvalProtocol("imagenet", "imagenet", "zeroshot_classification", 50000, 1000,
                 "ImageNet-1k val, 1,000 open_clip class names x 80 OpenAI templates, prompt ensembling (top-1/5)",
                 "--imagenet folder (default <root>/imagenet/val), one folder per synset",
                 "prompts"),
)}


def resolve(names: str | list[str]) -> list[EvalProtocol]:
    """Protocols of a comma-separated list (or list) of names; an unknown name is a one-line ``ValueError``."""
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not items:
        raise ValueError("--protocol: no protocol named")
    unknown = [n for n in items if n not in PROTOCOLS]
    if unknown:
        raise ValueError(f"--protocol: unknown protocol {unknown[0]!r} (known: {', '.join(PROTOCOLS)})")
    return [PROTOCOLS[n] for n in dict.fromkeys(items)]


def describe() -> str:
    """Every protocol, one paragraph each (for ``--help``)."""
    lines = []
    for p in PROTOCOLS.values():
        texts = f"{p.n_texts:,} classes" if p.task == "zeroshot_classification" else f"{p.n_texts:,} texts"
        lines.append(f"  {p.name}: {p.task}, {p.n_images:,} images / {texts}. {p.defined_by}. Data: {p.data}. "
                     f"Cleaning: {p.cleaning}.")
    lines += [f"  Cleaning {key}: {rule}." for key, rule in CLEANING.items()]
    lines.append(f"  Truncation (all): {TRUNCATION}.")
    return "\n".join(lines)
