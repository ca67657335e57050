"""Released long captions, parsed by their published column layout, as relabel records.

Layouts:

- ``dreamlip``: DreamLIP's ``{cc3m,cc12m,yfcc15m}_3long_3short_1raw_captions_url.csv`` (HF dataset
  ``qidouxiong619/dreamlip_long_captions``). Columns, as used by img2dataset recipes that read these files:
  ``Image Path`` (the image url), ``raw_caption``, and ``short``/``long`` + ``IB``/``LLA``/``SV`` +
  ``_captions`` for InstructBLIP, LLaVA-1.5 and ShareGPT4V (e.g. ``longSV_captions``).
- ``recap-long``: ``weiwu-ww/Recap-Long-Laion`` / ``-Coyo`` (``laion_*3long_captions.csv``): an image url and
  three long captions. Their header is not documented anywhere we could read, so this layout is an
  ASSUMPTION: the DreamLIP long-caption names (``longIB_captions``, ``longLLA_captions``, ``longSV_captions``),
  the url in the first present of ``Image Path``/``url``/``Image Url``/``URL`` and an optional raw caption in
  ``raw_caption``/``caption``/``TEXT``/``text``; short captions are ``""``. Override any name with ``columns``.

Records: ``{"key", "url", "raw", "captions": {captioner: {"short", "long"}}}``. The default key is the 9-digit
data-row index, which is img2dataset's sample key for the same file at its default 10,000 samples per shard;
``key_column`` picks a column instead. CSV is streamed in chunks; parquet needs pyarrow.

Bad values are counted skips (``strict=True``: an error naming file, row and column): an empty, non-UTF-8 or
absurdly long (over ``max_ratio`` x the column's median length in the first chunk, or over ``max_chars``) long
caption drops that captioner from the row, a bad short caption becomes ``""``, a bad url or raw caption (or no
long caption left) drops the row.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lotlip.io import atomic_path


class PrecomputedError(ValueError):
    """A caption table is unreadable, lacks a column, or (strict mode) holds a bad value."""


@dataclass(frozen=True)
class Layout:
    """Where a released table keeps each field: candidate column names, the first present wins."""

    name: str
    url: tuple[str, ...]
    raw: tuple[str, ...]
    raw_required: bool
    captions: dict[str, tuple[str | None, str]]  # captioner -> (short column or None, long column)


DREAMLIP = Layout(
    name="dreamlip", url=("Image Path",), raw=("raw_caption",), raw_required=True,
    captions={"instructblip": ("shortIB_captions", "longIB_captions"),
              "llava": ("shortLLA_captions", "longLLA_captions"),
              "sharegpt4v": ("shortSV_captions", "longSV_captions")},
)
RECAP_LONG = Layout(
    name="recap-long", url=("Image Path", "url", "Image Url", "URL"), raw=("raw_caption", "caption", "TEXT", "text"),
    raw_required=False,
    captions={"instructblip": (None, "longIB_captions"), "llava": (None, "longLLA_captions"),
              "sharegpt4v": (None, "longSV_captions")},
)
LAYOUTS: dict[str, Layout] = {"dreamlip": DREAMLIP, "recap-long": RECAP_LONG}


@dataclass
class PrecomputedStats:
    """Counts of one pass over a table."""

    rows: int = 0
    written: int = 0
    rows_skipped: int = 0
    skipped: Counter = field(default_factory=Counter)  # "column: problem" -> count (rows and captions)


def with_columns(layout: Layout, columns: dict[str, str]) -> Layout:
    """``layout`` with names overridden: keys ``url``, ``raw``, ``<captioner>.short``, ``<captioner>.long``."""
    captions = dict(layout.captions)
    url, raw = layout.url, layout.raw
    for field_name, column in columns.items():
        if field_name == "url":
            url = (column,)
        elif field_name == "raw":
            raw = (column,)
        elif field_name.count(".") == 1 and field_name.split(".")[1] in ("short", "long"):
            name, kind = field_name.split(".")
            short, long = captions.get(name, (None, ""))
            captions[name] = (column, long) if kind == "short" else (short, column)
        else:
            raise PrecomputedError(f"columns: unknown field {field_name!r} (url, raw, <captioner>.short|long)")
    return replace(layout, url=url, raw=raw, captions=captions)


@dataclass(frozen=True)
class _Plan:
    """Resolved column names of one file."""

    url: str
    raw: str | None
    key: str | None
    captions: dict[str, tuple[str | None, str]]

    def text_columns(self) -> list[str]:
        names = [self.raw, *(c for pair in self.captions.values() for c in pair)]
        return list(dict.fromkeys(n for n in names if n))

    def columns(self) -> list[str]:
        return list(dict.fromkeys(n for n in [self.url, self.key, *self.text_columns()] if n))


def _header(path: Path, fmt: str) -> list[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    import pandas as pd

    return [str(c) for c in pd.read_csv(path, nrows=0, encoding="utf-8", encoding_errors="surrogateescape").columns]


def _first(path: Path, header: list[str], candidates: tuple[str, ...], what: str, required: bool) -> str | None:
    for name in candidates:
        if name in header:
            return name
    if required:
        raise PrecomputedError(f"{path}: missing column {' / '.join(map(repr, candidates))} ({what}); "
                               f"the file has {', '.join(header)}")
    return None


def _plan(path: Path, fmt: str, layout: Layout, captioners: list[str] | None, key_column: str | None) -> _Plan:
    header = _header(path, fmt)
    names = list(layout.captions) if captioners is None else captioners
    unknown = [n for n in names if n not in layout.captions]
    if unknown:
        raise PrecomputedError(f"layout {layout.name}: no columns for captioner {unknown[0]!r} "
                               f"(has {', '.join(layout.captions)})")
    captions = {}
    for name in names:
        short, long = layout.captions[name]
        long = _first(path, header, (long,), f"{name} long caption", True)
        short = _first(path, header, (short,), f"{name} short caption", True) if short else None
        captions[name] = (short, long)
    return _Plan(url=_first(path, header, layout.url, "image url", True),
                 raw=_first(path, header, layout.raw, "raw caption", layout.raw_required),
                 key=_first(path, header, (key_column,), "key", True) if key_column else None,
                 captions=captions)


def _csv_chunks(path: Path, columns: list[str], chunksize: int) -> Iterator[list[dict[str, Any]]]:
    import pandas as pd

    reader = pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_filter=False,
                         chunksize=chunksize, encoding="utf-8", encoding_errors="surrogateescape")
    with reader:
        for chunk in reader:
            yield chunk.to_dict("records")


def _parquet_chunks(path: Path, columns: list[str], chunksize: int) -> Iterator[list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunksize, columns=columns):
        yield batch.to_pylist()


def _format(path: Path) -> str:
    if path.suffix.lower() in (".parquet", ".pq"):
        if importlib.util.find_spec("pyarrow") is None:
            raise PrecomputedError(f"{path}: reading parquet needs pyarrow, which is not installed "
                                   f"(pip install pyarrow, or use the csv release)")
        return "parquet"
    return "csv"


def _problem(value: Any, limit: float | None) -> str | None:
    """Why ``value`` is unusable as a caption (None if it is fine)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return "non-utf8"
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        return "empty"
    try:
        str(value).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes in the csv
        return "non-utf8"
    if limit is not None and len(str(value)) > limit:
        return "too-long"
    return None


def _limits(rows: list[dict[str, Any]], plan: _Plan, max_ratio: float | None,
            max_chars: int | None) -> dict[str, float | None]:
    """Per caption column: the longest acceptable length (``max_ratio`` x median of the sample, ``max_chars``)."""
    limits: dict[str, float | None] = {}
    for column in plan.text_columns():
        lengths = [len(str(r[column])) for r in rows if _problem(r[column], None) is None]
        cap = max_ratio * statistics.median(lengths) if max_ratio and lengths else None
        if max_chars is not None:
            cap = max_chars if cap is None else min(cap, max_chars)
        limits[column] = cap
    return limits


class _Checker:
    """Validates values; counts problems, or raises in strict mode."""

    def __init__(self, path: Path, strict: bool, stats: PrecomputedStats) -> None:
        self.path, self.strict, self.stats = path, strict, stats

    def ok(self, value: Any, column: str, row: int, limit: float | None = None) -> bool:
        problem = _problem(value, limit)
        if problem is None:
            return True
        if self.strict:
            raise PrecomputedError(f"{self.path}: data row {row}, column {column!r}: {problem} value")
        self.stats.skipped[f"{column}: {problem}"] += 1
        return False


def _record(row: dict[str, Any], index: int, plan: _Plan, limits: dict[str, float | None],
            check: _Checker) -> dict | None:
    """One record, or None when the row is skipped."""
    if not check.ok(row[plan.url], plan.url, index):
        return None
    if plan.raw and not check.ok(row[plan.raw], plan.raw, index, limits[plan.raw]):
        return None
    captions = {}
    for name, (short_col, long_col) in plan.captions.items():
        if not check.ok(row[long_col], long_col, index, limits[long_col]):
            continue
        short = ""
        if short_col and check.ok(row[short_col], short_col, index, limits[short_col]):
            short = str(row[short_col]).strip()
        captions[name] = {"short": short, "long": str(row[long_col]).strip()}
    if not captions:
        check.stats.skipped["no usable long caption"] += 1
        return None
    if plan.key and not check.ok(row[plan.key], plan.key, index):
        return None
    key = str(row[plan.key]).strip() if plan.key else f"{index:09d}"
    raw = str(row[plan.raw]).strip() if plan.raw else ""
    return {"key": key, "url": str(row[plan.url]).strip(), "raw": raw, "captions": captions}


def read_precomputed(path: str | Path, layout: str | Layout = "dreamlip", *, captioners: list[str] | None = None,
                     columns: dict[str, str] | None = None, key_column: str | None = None, strict: bool = False,
                     max_ratio: float | None = 50.0, max_chars: int | None = None, chunksize: int = 10_000,
                     stats: PrecomputedStats | None = None) -> Iterator[dict]:
    """Stream records from a released caption table (csv, or parquet with pyarrow).

    Args:
        layout: ``dreamlip``, ``recap-long`` or a ``Layout``.
        captioners: which captioners to read (default: all of the layout); only their columns must exist.
        columns: column-name overrides (see ``with_columns``).
        key_column: take keys from this column instead of the row index.
        strict: raise on the first bad value instead of counting it.
        max_ratio, max_chars: "absurdly long" bounds (None disables); the median is over the first chunk.
        stats: filled in while iterating.
    """
    path = Path(path)
    layout = LAYOUTS[layout] if isinstance(layout, str) and layout in LAYOUTS else layout
    if not isinstance(layout, Layout):
        raise PrecomputedError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    if columns:
        layout = with_columns(layout, columns)
    if not path.is_file():
        raise PrecomputedError(f"{path}: caption table not found")
    fmt = _format(path)
    plan = _plan(path, fmt, layout, captioners, key_column)
    stats = stats if stats is not None else PrecomputedStats()
    check = _Checker(path, strict, stats)
    chunks = (_parquet_chunks if fmt == "parquet" else _csv_chunks)(path, plan.columns(), chunksize)
    limits = None
    for rows in chunks:
        limits = limits if limits is not None else _limits(rows, plan, max_ratio, max_chars)
        for row in rows:
            index, stats.rows = stats.rows, stats.rows + 1
            record = _record(row, index, plan, limits, check)
            if record is None:
                stats.rows_skipped += 1
                continue
            stats.written += 1
            yield record


def write_precomputed_jsonl(path: str | Path, out_jsonl: str | Path, layout: str | Layout = "dreamlip",
                            **kwargs: Any) -> PrecomputedStats:
    """Convert a released table to a captions jsonl (written atomically); returns the counts."""
    stats = PrecomputedStats()
    with atomic_path(out_jsonl) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for record in read_precomputed(path, layout, stats=stats, **kwargs):
            fh.write(json.dumps(record, sort_keys=True) + "\n")
    return stats


def precomputed_backend(scenes: Iterable[Any], captioners: list[str], seed: int, *, path: str | Path,
                        layout: str = "dreamlip", key_column: str | None = None,
                        columns: dict[str, str] | None = None, strict: bool = False,
                        max_ratio: float | None = 50.0) -> Iterator[dict]:
    """Backend form: the records of ``path`` whose key is one of ``scenes`` (``seed`` is unused)."""
    wanted = {scene.key for scene in scenes}
    for record in read_precomputed(path, layout, captioners=captioners, columns=columns, key_column=key_column,
                                   strict=strict, max_ratio=max_ratio):
        if record["key"] in wanted:
            yield record
