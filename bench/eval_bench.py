"""Figure 6: long-text retrieval evaluation: encoding throughput and the memory of the similarity search.

Encoding goes through ``lotlip.eval.retrieval.encode_texts`` / ``encode_images`` exactly as ``lotlip evaluate``
calls them (tokenise + trim padding + ``encode_text``; PNG decode + transform + ``encode_image``; batch 256) on
DCI-style long texts of the bench world's scenes, with ``lotlip-tiny`` (2 corner tokens) at the pipeline's
context (77: longer texts are truncated) and at 256. The similarity search is ``recall_at_k`` on random unit
features (dimension 128, as the model's): time and peak memory above the process's resident size before the
call (Linux VmHWM reset through ``/proc/self/clear_refs``), dense (one block holding the whole N x N matrix)
vs blocked (the default 256 MiB cap), and blocked at 100k x 100k, whose dense matrix (40 GB) could not exist here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bench.common import measure_peak, throughput
from bench.data import BenchData
from lotlip.eval.retrieval import block_rows, encode_images, encode_texts, recall_at_k
from lotlip.model import create_model, get_tokenizer
from lotlip.world.build import load_scenes, long_text


@dataclass(frozen=True)
class EvalSettings:
    """Sizes of figure 6."""

    n_texts: int = 1000
    n_images: int = 1000
    contexts: tuple[int, ...] = (77, 256)
    batch: int = 256
    dim: int = 128
    sim_sizes: tuple[int, ...] = (10_000,)  # dense and blocked
    large_size: int = 100_000  # blocked only
    threads: int = 2


QUICK_EVAL = EvalSettings(n_texts=32, n_images=32, contexts=(77,), batch=16, sim_sizes=(1000,), large_size=3000,
                          threads=1)


def _unit(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _similarity_row(n: int, dim: int, block: int | None) -> dict:
    """Time and peak memory of recall@1 over n x n (``block`` None: the default blocking; n: dense)."""
    image, text = _unit(n, dim, 0), _unit(n, dim, 1)
    text = torch.nn.functional.normalize(image + text, dim=-1)  # paired: recall well above chance
    kwargs = {} if block is None else {"block": block, "max_block_bytes": n * n * 4}
    start = time.perf_counter()
    (i2t, t2i), peak_mb = measure_peak(lambda: recall_at_k(image, text, k=1, **kwargs))
    seconds = time.perf_counter() - start
    rows = block_rows(n) if block is None else block
    return {"n": n, "mode": "dense" if rows >= n else "blocked", "block_rows": min(rows, n),
            "similarity_block_mb": round(min(rows, n) * n * 4 / 2**20, 1), "dense_matrix_mb": round(n * n * 4 / 2**20),
            "seconds": round(seconds, 2), "peak_extra_mb": peak_mb, "r1": [round(i2t, 2), round(t2i, 2)]}


def bench_eval(data: BenchData, s: EvalSettings) -> dict:
    """Figure 6: texts/s and images/s of evaluation encoding, and the similarity search's time and memory."""
    torch.set_num_threads(s.threads)
    scenes = load_scenes(data.world_dir)
    texts = [long_text(scene, "dci", 1000) for scene in scenes[: s.n_texts]]
    paths = [data.world_dir / "images" / f"{scene.key}.png" for scene in scenes[: s.n_images]]
    encode = []
    for context in s.contexts:
        torch.manual_seed(0)
        model = create_model("lotlip-tiny", num_corner_tokens=2, context_length=context).eval()
        tokenizer = get_tokenizer("lotlip-tiny", num_corner_tokens=2, context_length=context)
        start = time.perf_counter()
        encode_texts(model, tokenizer, texts, s.batch)
        text_s = time.perf_counter() - start
        row = {"context": context, "texts": len(texts), "texts_per_s": throughput(len(texts), text_s)}
        if context == s.contexts[0]:  # the image tower does not depend on the text context
            start = time.perf_counter()
            encode_images(model, paths, s.batch)
            row.update(images=len(paths), images_per_s=throughput(len(paths), time.perf_counter() - start))
        encode.append(row)
    counter = get_tokenizer("lotlip-tiny", num_corner_tokens=2)
    lengths = sorted(counter.count_tokens(t) for t in texts)
    similarity = [_similarity_row(n, s.dim, n) for n in s.sim_sizes]
    similarity += [_similarity_row(n, s.dim, None) for n in (*s.sim_sizes, s.large_size)]
    return {"model": "lotlip-tiny (2 corner tokens), random init", "batch": s.batch, "text_style": "dci",
            "text_tokens": {"median": lengths[len(lengths) // 2], "max": lengths[-1]}, "encode": encode,
            "feature_dim": s.dim, "similarity": similarity}
