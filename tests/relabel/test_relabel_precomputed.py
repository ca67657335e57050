"""Released long-caption tables (DreamLIP csv, Recap-Long) parsed from fixtures in their published layouts."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from lotlip.io import read_jsonl
from lotlip.relabel.precomputed import (
    PrecomputedError,
    PrecomputedStats,
    precomputed_backend,
    read_precomputed,
    write_precomputed_jsonl,
)

DREAMLIP_HEADER = ["Image Path", "raw_caption", "shortIB_captions", "longIB_captions", "shortSV_captions",
                   "longSV_captions", "shortLLA_captions", "longLLA_captions"]
TAGS = {"IB": "instructblip", "SV": "sharegpt4v", "LLA": "llava"}


def _long(i: int, tag: str) -> str:
    return (f"The image {i} shows a red circle, seen by {tag}.\nIt sits on a grey background.</s>"
            f" A small blue square is to the left.")


def _dreamlip_row(i: int) -> dict[str, str]:
    row = {"Image Path": f"http://example.com/img/{i}.jpg", "raw_caption": f"alt text {i}"}
    for tag in TAGS:
        row[f"short{tag}_captions"] = f"a red circle ({tag} {i})"
        row[f"long{tag}_captions"] = _long(i, tag)
    return row


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]], replace: dict[str, bytes] | None = None):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    for marker, raw in (replace or {}).items():
        data = data.replace(marker.encode(), raw)
    path.write_bytes(data)
    return path


@pytest.fixture
def dreamlip_csv(tmp_path) -> Path:
    return _write_csv(tmp_path / "cc3m_3long_3short_1raw_captions_url.csv", DREAMLIP_HEADER,
                      [_dreamlip_row(i) for i in range(12)])


def test_dreamlip_layout(dreamlip_csv):
    stats = PrecomputedStats()
    records = list(read_precomputed(dreamlip_csv, "dreamlip", stats=stats))
    assert len(records) == 12 and stats.written == 12 and stats.rows_skipped == 0 and not stats.skipped
    first = records[0]
    assert first["key"] == "000000000" and records[11]["key"] == "000000011"
    assert first["url"] == "http://example.com/img/0.jpg" and first["raw"] == "alt text 0"
    assert set(first["captions"]) == {"instructblip", "llava", "sharegpt4v"}
    assert first["captions"]["llava"] == {"short": "a red circle (LLA 0)", "long": _long(0, "LLA")}
    assert "\n" in first["captions"]["sharegpt4v"]["long"]  # quoted multi-line fields survive


def test_chunked_reading_matches(dreamlip_csv):
    assert list(read_precomputed(dreamlip_csv, chunksize=5)) == list(read_precomputed(dreamlip_csv))


def test_captioner_subset_and_key_column(dreamlip_csv):
    records = list(read_precomputed(dreamlip_csv, captioners=["sharegpt4v"], key_column="raw_caption"))
    assert set(records[3]["captions"]) == {"sharegpt4v"} and records[3]["key"] == "alt text 3"
    with pytest.raises(PrecomputedError, match="no columns for captioner 'gpt4'"):
        list(read_precomputed(dreamlip_csv, captioners=["gpt4"]))


def test_missing_column_names_file_and_column(tmp_path):
    header = [h for h in DREAMLIP_HEADER if h != "longSV_captions"]
    rows = [{k: v for k, v in _dreamlip_row(i).items() if k in header} for i in range(3)]
    path = _write_csv(tmp_path / "partial.csv", header, rows)
    with pytest.raises(PrecomputedError, match=r"partial\.csv: missing column 'longSV_captions'"):
        list(read_precomputed(path))
    assert len(list(read_precomputed(path, captioners=["llava", "instructblip"]))) == 3
    with pytest.raises(PrecomputedError, match=r"partial\.csv: missing column 'id' \(key\)"):
        list(read_precomputed(path, captioners=["llava"], key_column="id"))


def test_recap_long_layout(tmp_path):
    header = ["url", "longIB_captions", "longLLA_captions", "longSV_captions"]
    rows = [{"url": f"http://laion/{i}.jpg", **{f"long{t}_captions": _long(i, t) for t in TAGS}} for i in range(4)]
    records = list(read_precomputed(_write_csv(tmp_path / "laion_1_3long_captions.csv", header, rows),
                                    "recap-long"))
    assert [r["url"] for r in records] == [f"http://laion/{i}.jpg" for i in range(4)]
    assert records[0]["raw"] == "" and records[0]["captions"]["instructblip"] == {"short": "",
                                                                                   "long": _long(0, "IB")}
    header = ["Image Path", "raw_caption", "longSV_captions"]
    rows = [{"Image Path": f"http://coyo/{i}.jpg", "raw_caption": f"coyo {i}", "longSV_captions": _long(i, "SV")}
            for i in range(3)]
    path = _write_csv(tmp_path / "coyo_1_3long_captions.csv", header, rows)
    records = list(read_precomputed(path, "recap-long", captioners=["sharegpt4v"]))
    assert records[2]["raw"] == "coyo 2" and records[2]["url"] == "http://coyo/2.jpg"


def test_column_overrides(tmp_path):
    rows = [{"image_url": f"u{i}", "caption": f"c{i}", "long_caption": _long(i, "SV")} for i in range(3)]
    path = _write_csv(tmp_path / "renamed.csv", ["image_url", "caption", "long_caption"], rows)
    records = list(read_precomputed(path, "recap-long", captioners=["sharegpt4v"],
                                    columns={"url": "image_url", "raw": "caption", "sharegpt4v.long": "long_caption"}))
    assert records[1] == {"key": "000000001", "url": "u1", "raw": "c1",
                          "captions": {"sharegpt4v": {"short": "", "long": _long(1, "SV")}}}
    with pytest.raises(PrecomputedError, match="unknown field 'sharegpt4v.medium'"):
        list(read_precomputed(path, columns={"sharegpt4v.medium": "x"}))


def test_bad_values_are_counted_skips(tmp_path):
    rows = [_dreamlip_row(i) for i in range(20)]
    rows[1]["longLLA_captions"] = "   "  # empty: llava dropped from this row
    rows[2]["longIB_captions"] = "BADBYTE"  # non-UTF-8: instructblip dropped
    rows[3]["longSV_captions"] = "word " * 5000  # absurdly long (> 50 x median): sharegpt4v dropped
    rows[4]["raw_caption"] = ""  # no raw caption: row dropped
    rows[5]["shortIB_captions"] = ""  # empty short: kept as ""
    for tag in TAGS:
        rows[6][f"long{tag}_captions"] = ""  # nothing left: row dropped
    path = _write_csv(tmp_path / "bad.csv", DREAMLIP_HEADER, rows, {"BADBYTE": b"caf\xe9 \xff"})
    stats = PrecomputedStats()
    records = {r["key"]: r for r in read_precomputed(path, stats=stats)}
    assert stats.rows == 20 and stats.written == 18 and stats.rows_skipped == 2
    assert "000000004" not in records and "000000006" not in records
    assert set(records["000000001"]["captions"]) == {"instructblip", "sharegpt4v"}
    assert set(records["000000002"]["captions"]) == {"llava", "sharegpt4v"}
    assert set(records["000000003"]["captions"]) == {"instructblip", "llava"}
    assert records["000000005"]["captions"]["instructblip"]["short"] == ""
    assert stats.skipped == {"longLLA_captions: empty": 2, "longIB_captions: non-utf8": 1,
                             "longSV_captions: too-long": 1, "raw_caption: empty": 1,
                             "shortIB_captions: empty": 1, "longIB_captions: empty": 1,
                             "longSV_captions: empty": 1, "no usable long caption": 1}
    assert len(list(read_precomputed(path, max_ratio=None))) == 18  # too-long check off: row 3 keeps all three
    with pytest.raises(PrecomputedError, match=r"bad\.csv: data row 1, column 'longLLA_captions': empty"):
        list(read_precomputed(path, strict=True))
    with pytest.raises(PrecomputedError, match=r"data row 2, column 'longIB_captions': non-utf8"):
        list(read_precomputed(path, strict=True, captioners=["instructblip"]))


def test_max_chars_bound(dreamlip_csv):
    stats = PrecomputedStats()
    records = list(read_precomputed(dreamlip_csv, captioners=["llava"], max_chars=20, stats=stats))
    assert records == [] and stats.skipped["longLLA_captions: too-long"] == 12


def test_parquet(tmp_path):
    path = tmp_path / "cc3m.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1")
        with pytest.raises(PrecomputedError, match=r"cc3m\.parquet: reading parquet needs pyarrow"):
            list(read_precomputed(path))
        return
    import pandas as pd

    pd.DataFrame([_dreamlip_row(i) for i in range(5)]).to_parquet(path)
    records = list(read_precomputed(path, chunksize=2))
    assert len(records) == 5 and records[4]["captions"]["sharegpt4v"]["long"] == _long(4, "SV")


def test_unknown_layout_and_missing_file(dreamlip_csv, tmp_path):
    with pytest.raises(PrecomputedError, match="layout: 'sharegpt' is not one of dreamlip, recap-long"):
        list(read_precomputed(dreamlip_csv, "sharegpt"))
    with pytest.raises(PrecomputedError, match="nope.csv: caption table not found"):
        list(read_precomputed(tmp_path / "nope.csv"))


def test_write_jsonl_and_backend(dreamlip_csv, tmp_path):
    stats = write_precomputed_jsonl(dreamlip_csv, tmp_path / "out" / "captions.jsonl")
    assert stats.written == 12 and len(read_jsonl(tmp_path / "out" / "captions.jsonl")) == 12
    scenes = [SimpleNamespace(key=f"{i:09d}") for i in (2, 7)]
    records = list(precomputed_backend(scenes, ["llava", "sharegpt4v"], 0, path=dreamlip_csv))
    assert [r["key"] for r in records] == ["000000002", "000000007"]
    assert set(records[0]["captions"]) == {"llava", "sharegpt4v"}
