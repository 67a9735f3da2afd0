"""Bad input gets a clear error naming the file, the line or column and what was expected; nothing
half-written is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from comirec.config import PrepareConfig
from comirec.data import DataFormatError, PreparedWriter, load_prepared, prepare


def good_taobao_lines(n: int = 60) -> list[str]:
    return [f"{u},{i},{i % 3},pv,{1000 + k}" for k, (u, i) in enumerate((k % 6, k % 5) for k in range(n))]


def run(tmp_path: Path, fmt: str, input: Path, **kw: object):
    return prepare(PrepareConfig(format=fmt, input=str(input), out=str(tmp_path / "out"), **kw))  # type: ignore[arg-type]


def assert_nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "a temporary directory was left"


@pytest.mark.parametrize(
    ("bad_line", "match"),
    [
        ("1,2,3,pv", r"line 31: expected 5 comma-separated fields \(user, item, category, behavior, timestamp\), got 4"),
        ("1,2,3,pv,yesterday", r"line 31, column 'timestamp': expected an integer, got 'yesterday'"),
        ("1,x2,3,pv,5", r"line 31, column 'item': expected an integer, got 'x2'"),
        ("1,,3,pv,5", r"line 31, column 'item': expected an integer, got ''"),
    ],
)
def test_taobao_bad_lines(tmp_path, bad_line, match):
    lines = good_taobao_lines()
    lines.insert(30, bad_line)
    f = tmp_path / "UserBehavior.csv"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=match) as err:
        run(tmp_path, "taobao", f)
    assert str(f) in str(err.value)
    assert_nothing_written(tmp_path)


def test_line_numbers_stay_exact_across_blocks(tmp_path):
    from comirec.data.formats import taobao

    lines = good_taobao_lines(50_000)
    lines[41_234] = "7,7,7,pv,soon"
    f = tmp_path / "UserBehavior.csv"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"line 41235, column 'timestamp'"):
        taobao.load_taobao(f, ("pv",), block_bytes=8192)


def test_csv_missing_column_and_non_numeric_time(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("user,item,time\n1,2,3\n")
    with pytest.raises(DataFormatError, match=r"missing column\(s\) 'user_id', 'item_id', 'timestamp'; the file has columns 'user', 'item', 'time'"):
        run(tmp_path, "csv", f)
    f.write_text("user_id,item_id,timestamp\n" + "".join(f"{k % 4},{k % 3},{k}\n" for k in range(20)) + "1,2,noon\n")
    with pytest.raises(DataFormatError, match=r"log.csv, line 22, column 'timestamp': expected a numeric timestamp or an ISO date-time, got 'noon'"):
        run(tmp_path, "csv", f)
    f.write_text("user_id,item_id,timestamp\n1,2,3\n1,2,2020-01-01\n")
    with pytest.raises(DataFormatError, match=r"line 3, column 'timestamp': expected a number like line 2, got a date-time"):
        run(tmp_path, "csv", f)
    assert_nothing_written(tmp_path)


def test_undecodable_bytes_in_a_bad_csv_field_are_escaped(tmp_path):
    # shown as \\xNN, as read: no U+FFFD in their place, no raw control characters
    f = tmp_path / "log.csv"
    f.write_bytes(b"user_id,item_id,timestamp\n" + b"".join(b"%d,%d,%d\n" % (k % 4, k % 3, k) for k in range(20)) + b"1,2,\xff\x00\x1b[31m\n")
    with pytest.raises(DataFormatError) as info:
        run(tmp_path, "csv", f)
    msg = str(info.value)
    assert msg.endswith("line 22, column 'timestamp': expected a numeric timestamp or an ISO date-time, got '\\xff\\x00\\x1b[31m'"), msg
    assert "\ufffd" not in msg and all(ch.isprintable() for ch in msg)
    assert_nothing_written(tmp_path)


def test_a_corrupt_compressed_input_names_the_file(tmp_path):
    f = tmp_path / "seqs.txt.gz"
    f.write_bytes(b"\x1f\x8b\x08garbage" * 10)
    with pytest.raises(DataFormatError, match=r"seqs.txt.gz: cannot read the file: .*zlib"):
        run(tmp_path, "sequences", f)
    assert_nothing_written(tmp_path)


def test_parquet_missing_column_and_nulls(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    f = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": [1, 2], "item": [3, 4], "timestamp": [1, 2]}), f)
    with pytest.raises(DataFormatError, match=r"log.parquet: missing column\(s\) 'item_id'"):
        run(tmp_path, "parquet", f)
    pq.write_table(pa.table({"user_id": [1, None], "item_id": [3, 4], "timestamp": [1, 2]}), f)
    with pytest.raises(DataFormatError, match=r"log.parquet, row 2, column 'user_id': missing value"):
        run(tmp_path, "parquet", f)
    f.write_text("not parquet")
    with pytest.raises(DataFormatError, match="not a Parquet file"):
        run(tmp_path, "parquet", f)


def test_amazon_bad_records(tmp_path):
    f = tmp_path / "reviews.json"
    good = [json.dumps({"reviewerID": f"A{k % 4}", "asin": f"B{k % 3}", "unixReviewTime": k}) for k in range(10)]
    f.write_text("\n".join(good + ['{"reviewerID": "A1", "asin": "B1"']) + "\n")
    with pytest.raises(DataFormatError, match=r"reviews.json, line 11: expected a JSON object per line"):
        run(tmp_path, "amazon-books", f)
    f.write_text("\n".join(good + ['{"reviewerID": "A1", "asin": "B1"}']) + "\n")
    with pytest.raises(DataFormatError, match=r"line 11: missing field 'unixReviewTime'"):
        run(tmp_path, "amazon-books", f)
    f.write_text("\n".join(good + ['{"reviewerID": "A1", "asin": "B1", "unixReviewTime": "05 3, 2014"}']) + "\n")
    with pytest.raises(DataFormatError, match=r"line 11, field 'unixReviewTime': expected an integer unix time"):
        run(tmp_path, "amazon-books", f)
    f.write_text("\n".join(good) + "\n")
    meta = tmp_path / "meta.json"
    meta.write_text("{'asin': 'B1', 'categories': [['Books']]}\n{'asin': 'B2', 'categories': [[\n")
    with pytest.raises(DataFormatError, match=r"meta.json, line 2: expected a JSON object or a Python dict literal"):
        run(tmp_path, "amazon-books", f, categories=str(meta), min_item_count=1, min_user_count=1)
    assert_nothing_written(tmp_path)


def test_empty_after_filtering_and_empty_file(tmp_path):
    f = tmp_path / "UserBehavior.csv"
    f.write_text("\n".join(good_taobao_lines(12)) + "\n")
    with pytest.raises(DataFormatError, match=r"no interactions left after filtering .* lower --min-item-count"):
        run(tmp_path, "taobao", f, min_item_count=50)
    f.write_text("")
    with pytest.raises(DataFormatError, match="no interactions left"):
        run(tmp_path, "taobao", f)
    assert_nothing_written(tmp_path)


def test_unknown_format_and_missing_paths(tmp_path):
    with pytest.raises(ValueError, match="format: expected one of amazon-books, taobao, movielens, sequences, csv, parquet, got 'orc'"):
        run(tmp_path, "orc", tmp_path)
    with pytest.raises(FileNotFoundError, match="input: .*nowhere.csv: no such file"):
        run(tmp_path, "csv", tmp_path / "nowhere.csv")
    f = tmp_path / "UserBehavior.csv"
    f.write_text("\n".join(good_taobao_lines()) + "\n")
    with pytest.raises(FileNotFoundError, match="split_file"):
        run(tmp_path, "taobao", f, split_file=str(tmp_path / "nope.tsv"))
    with pytest.raises(FileNotFoundError, match="categories"):
        run(tmp_path, "csv", f, categories=str(tmp_path / "nope.tsv"))
    with pytest.raises(DataFormatError, match="expected a MovieLens directory"):
        run(tmp_path, "movielens", tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)
    with pytest.raises(ValueError, match="delimiter"):
        run(tmp_path, "csv", f, delimiter="")
    assert_nothing_written(tmp_path)


def test_sequences_directory_must_be_unambiguous(tmp_path):
    (tmp_path / "a.txt").write_text("1 2 3\n")
    (tmp_path / "b.txt").write_text("1 2 3\n")
    with pytest.raises(DataFormatError, match=r"expected one <name>.txt .* found a.txt, b.txt"):
        run(tmp_path, "sequences", tmp_path)


def test_existing_output_and_overwrite(tmp_path):
    f = tmp_path / "UserBehavior.csv"
    f.write_text("\n".join(good_taobao_lines()) + "\n")
    first = run(tmp_path, "taobao", f, min_item_count=1, min_user_count=1)
    with pytest.raises(FileExistsError, match="already exists .*--overwrite"):
        run(tmp_path, "taobao", f)
    # A failed overwrite leaves the old dataset intact.
    f.write_text("1,2,3\n")
    with pytest.raises(DataFormatError):
        run(tmp_path, "taobao", f, overwrite=True)
    np.testing.assert_array_equal(load_prepared(tmp_path / "out").items, first.items)
    f.write_text("\n".join(good_taobao_lines(30)) + "\n")
    second = run(tmp_path, "taobao", f, min_item_count=1, min_user_count=1, overwrite=True)
    assert second.n_interactions == 30
    # Never replace a directory that is not a prepared dataset.
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a prepared dataset"):
        PreparedWriter(other, overwrite=True)


def test_load_prepared_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        load_prepared(tmp_path)
    f = tmp_path / "UserBehavior.csv"
    f.write_text("\n".join(good_taobao_lines()) + "\n")
    ds = run(tmp_path, "taobao", f, min_item_count=1, min_user_count=1)
    (ds.path / "split.npy").unlink()
    with pytest.raises(FileNotFoundError, match="missing split.npy"):
        load_prepared(ds.path)
    np.save(ds.path / "split.npy", np.zeros(ds.n_users + 1, np.int8))
    with pytest.raises(ValueError, match="split has 7 entries, expected 6"):
        load_prepared(ds.path)
    np.save(ds.path / "split.npy", np.zeros(ds.n_users, np.int64))
    with pytest.raises(ValueError, match="split.npy: expected dtype i1"):
        load_prepared(ds.path)
    head = json.loads((ds.path / "header.json").read_text())
    (ds.path / "header.json").write_text(json.dumps({**head, "format_version": 99}))
    with pytest.raises(ValueError, match="expected format_version 1, got 99"):
        load_prepared(ds.path)
