"""Every input format, written by the tests, prepared and compared with the protocol reference."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from protocol_check import assert_matches

from comirec.reference.protocol import reference_protocol

from comirec.config import PrepareConfig
from comirec.data import load_prepared, prepare

MIN = 2  # small thresholds so that filtering bites on small logs


def make_rows(seed: int, n: int = 400, n_users: int = 40, n_items: int = 60, n_cats: int = 6) -> list[tuple]:
    """(user, item, time, category) rows with repeated times, skewed items, a fixed item category."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = np.minimum((n_items * rng.random(n) ** 2).astype(int), n_items - 1)
    times = rng.integers(0, 30, n)  # many ties: the sort must be stable
    cat_of_item = rng.integers(0, n_cats, n_items)
    return [(int(u) + 100, int(i) + 7, int(t), int(cat_of_item[i])) for u, i, t in zip(users, items, times)]


def run(tmp_path: Path, **kw: Any) -> Any:
    cfg = PrepareConfig(out=str(tmp_path / "out"), min_item_count=MIN, min_user_count=MIN, **kw)
    return prepare(cfg)


# ---- taobao ----------------------------------------------------------------------------------------


def test_taobao(tmp_path):
    rows = make_rows(1)
    behaviors = np.random.default_rng(2).choice(["pv", "buy", "cart", "fav"], len(rows), p=[0.7, 0.1, 0.1, 0.1])
    f = tmp_path / "UserBehavior.csv"
    f.write_text("".join(f"{u},{i},{c + 1000},{b},{t + 1511539200}\n" for (u, i, t, c), b in zip(rows, behaviors)))
    ds = run(tmp_path, format="taobao", input=str(f), block_mb=1)
    pv = [(u, i, t, c + 1000) for (u, i, t, c), b in zip(rows, behaviors) if b == "pv"]
    assert_matches(ds, reference_protocol(pv, MIN, MIN))
    assert ds.user_raw.dtype == np.int64 and ds.item_raw.dtype == np.int64 and ds.cat_raw.dtype == np.int64
    assert ds.header["stats"]["raw"]["rows_read"] == len(rows)
    assert ds.header["stats"]["raw"]["rows_kept"] == len(pv)
    assert ds.header["synthetic"] is False
    ds_all = prepare(
        PrepareConfig(
            format="taobao", input=str(f), out=str(tmp_path / "all"), behaviors="all", min_item_count=MIN, min_user_count=MIN
        )
    )
    all_rows = [(u, i, t, c + 1000) for (u, i, t, c) in rows]
    assert_matches(ds_all, reference_protocol(all_rows, MIN, MIN))


def test_taobao_many_small_blocks_equal_one_block(tmp_path, monkeypatch):
    rows = make_rows(3, n=3000, n_users=200, n_items=300)
    f = tmp_path / "UserBehavior.csv"
    f.write_text("".join(f"{u},{i},{c},pv,{t}\n" for u, i, t, c in rows))
    # 1 MiB blocks hold the whole file; the reference checks it. Then force many blocks.
    ds = run(tmp_path, format="taobao", input=str(f))
    assert_matches(ds, reference_protocol(rows, MIN, MIN))
    from comirec.data.formats import taobao

    big = taobao.load_taobao(f, ("pv",))
    from comirec.data import log

    monkeypatch.setattr(log._Encoder, "MERGE_MIN", 16)  # merge the running dictionaries often
    small = taobao.load_taobao(f, ("pv",), block_bytes=4096)
    np.testing.assert_array_equal(small.user, big.user)
    np.testing.assert_array_equal(small.item, big.item)
    np.testing.assert_array_equal(small.time, big.time)
    np.testing.assert_array_equal(small.item_cat, big.item_cat)
    np.testing.assert_array_equal(small.item_raw, big.item_raw)


# ---- amazon ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_amazon_books(tmp_path, compressed):
    rows = make_rows(4)
    opener = gzip.open if compressed else open
    reviews = tmp_path / ("reviews_Books_5.json" + (".gz" if compressed else ""))
    with opener(reviews, "wt") as f:
        for u, i, t, _ in rows:
            rec = {"reviewerID": f"A{u}X", "asin": f"B{i:05d}", "reviewText": "good, \"really\"", "overall": 4.0,
                   "unixReviewTime": 1_300_000_000 + 86400 * t}  # fmt: skip
            f.write(json.dumps(rec) + "\n")
    meta = tmp_path / "meta_Books.json"
    cat_of = {}
    with open(meta, "w") as f:
        for n, i in enumerate(sorted({r[1] for r in rows})):
            if n % 7 == 3:
                continue  # an item without metadata: unknown category
            path = ["Books", f"Genre{i % 5}", f"Sub {i % 3}, it's \"[x]\" caf\u00e9"]  # quotes, brackets, commas
            if n % 2:  # 2014 style: a Python dict literal, categories = list of paths
                rec: dict[str, Any] = {"asin": f"B{i:05d}", "title": "It's", "categories": [path, ["Other"]]}
                f.write(repr(rec) + "\n")
            else:  # 2018 style: JSON, category = one flat path
                f.write(json.dumps({"asin": f"B{i:05d}", "category": path, "price": "$1"}) + "\n")
            cat_of[f"B{i:05d}"] = path[-1]
        f.write(json.dumps({"asin": "B99999", "category": ["Books", "Unused"]}) + "\n")
    ds = run(tmp_path, format="amazon-books", input=str(reviews), categories=str(meta))
    exp_rows = [(f"A{u}X", f"B{i:05d}", 1_300_000_000 + 86400 * t, None) for u, i, t, _ in rows]
    side = [(k, v) for k, v in cat_of.items()] + [("B99999", "Unused")]
    assert_matches(ds, reference_protocol(exp_rows, MIN, MIN, side=side))
    assert ds.user_raw.dtype.kind == "U" and ds.item_raw[0] == ""
    assert ds.header["stats"]["raw"]["items_without_category"] > 0
    assert ds.cat_raw[-1] == "<unknown>"


# ---- movielens ---------------------------------------------------------------------------------------

GENRES = ["Action", "Comedy", "Drama", "Sci-Fi", "Children's"]


def _ml_rows(seed: int) -> list[tuple]:
    return [(u, i, 880_000_000 + 1000 * t, c) for u, i, t, c in make_rows(seed)]


def test_movielens_recbole(tmp_path):
    rows = _ml_rows(5)
    d = tmp_path / "ml-tiny"
    d.mkdir()
    with open(d / "ml-tiny.inter", "w") as f:
        f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        f.writelines(f"{u}\t{i}\t4\t{t}\n" for u, i, t, _ in rows)
    items = sorted({r[1] for r in rows})
    with open(d / "ml-tiny.item", "w") as f:
        f.write("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n")
        for i in items:
            genres = " ".join(GENRES[(i + k) % 5] for k in range(1 + i % 3)) if i % 11 else ""
            f.write(f"{i}\tMovie {i}\t1995\t{genres}\n")
    ds = run(tmp_path, format="movielens", input=str(d))
    side = [(i, GENRES[i % 5]) for i in items if i % 11]
    assert_matches(ds, reference_protocol([(u, i, t, None) for u, i, t, _ in rows], MIN, MIN, side=side))
    assert ds.header["name"] == "ml-tiny"


def test_movielens_grouplens_udata(tmp_path):
    rows = _ml_rows(6)
    (tmp_path / "u.data").write_text("".join(f"{u}\t{i}\t3\t{t}\n" for u, i, t, _ in rows))
    genre_names = ["unknown", "Action", "Adventure", "Animation"] + [f"G{k}" for k in range(15)]
    (tmp_path / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(genre_names)) + "\n")
    items = sorted({r[1] for r in rows})
    with open(tmp_path / "u.item", "w", encoding="latin-1") as f:
        for i in items:
            flags = ["0"] * 19
            for k in (i % 19, (i * 7) % 19):
                flags[k] = "1"
            if i % 13 == 0:
                flags = ["0"] * 19
            f.write(f"{i}|Caf\xe9 {i} (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n")
    ds = run(tmp_path, format="movielens", input=str(tmp_path / "u.data"))
    side = [(i, genre_names[min(i % 19, (i * 7) % 19)]) for i in items if i % 13]
    assert_matches(ds, reference_protocol([(u, i, t, None) for u, i, t, _ in rows], MIN, MIN, side=side))


def test_movielens_ratings_dat_and_csv(tmp_path):
    rows = _ml_rows(7)
    items = sorted({r[1] for r in rows})
    dat = tmp_path / "dat"
    dat.mkdir()
    (dat / "ratings.dat").write_text("".join(f"{u}::{i}::5::{t}\n" for u, i, t, _ in rows))
    with open(dat / "movies.dat", "w", encoding="latin-1") as f:
        f.writelines(f"{i}::Am\xe9lie, {i} (2001)::{GENRES[i % 5]}|{GENRES[(i + 1) % 5]}\n" for i in items)
    ds = run(tmp_path / "a", format="movielens", input=str(dat))
    side = [(i, GENRES[i % 5]) for i in items]
    exp = reference_protocol([(u, i, t, None) for u, i, t, _ in rows], MIN, MIN, side=side)
    assert_matches(ds, exp)

    csvd = tmp_path / "csv"
    csvd.mkdir()
    (csvd / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},3.5,{t}\n" for u, i, t, _ in rows))
    with open(csvd / "movies.csv", "w") as f:
        f.write("movieId,title,genres\n")
        f.writelines(f'{i},"Title, with comma {i}",{GENRES[i % 5]}|Drama\n' for i in items[:-1])
        f.write(f"{items[-1]},Nothing,(no genres listed)\n")
    ds2 = run(tmp_path / "b", format="movielens", input=str(csvd / "ratings.csv"))
    side2 = [(i, GENRES[i % 5]) for i in items[:-1]]
    assert_matches(ds2, reference_protocol([(u, i, t, None) for u, i, t, _ in rows], MIN, MIN, side=side2))


# ---- sequences -------------------------------------------------------------------------------------


def _write_sequences(d: Path, name: str, seed: int) -> tuple[list[tuple], list[tuple]]:
    rng = np.random.default_rng(seed)
    rows, side = [], []
    lines = []
    for u in range(1, 60):
        seq = np.minimum((80 * rng.random(rng.integers(1, 12)) ** 2).astype(int), 79) + 1
        lines.append(" ".join(map(str, [u, *seq.tolist()])))
        rows.extend((u, int(i), len(rows), None) for i in seq)
    (d / f"{name}.txt").write_text("\n".join(lines) + "\n")
    with open(d / f"{name}_item_category.DERIVED.tsv", "w") as f:
        f.write("item_id\tcat_top_attr\tcat_l2_attr\n")
        for i in range(1, 81):
            top, l2 = i % 3, i % 4
            f.write(f"{i}\t{top}\t{l2}\n")
            side.append((i, f"{top}/{l2}"))
    return rows, side


def test_sequences_directory_and_files(tmp_path):
    d = tmp_path / "Toys"
    d.mkdir()
    rows, side = _write_sequences(d, "Toys", 8)
    (d / "README.txt").write_text("not a sequence file without its categories\n")
    ds = run(tmp_path / "a", format="sequences", input=str(d))
    exp = reference_protocol(rows, MIN, MIN, side=side)
    assert_matches(ds, exp)
    assert ds.header["protocol"]["time_order"] == "input order"
    ds2 = run(
        tmp_path / "b", format="sequences", input=str(d / "Toys.txt"), categories=str(d / "Toys_item_category.DERIVED.tsv")
    )
    np.testing.assert_array_equal(ds.items, ds2.items)
    ds3 = run(tmp_path / "c", format="sequences", input=str(d / "Toys.txt"))  # categories found beside it
    np.testing.assert_array_equal(ds.item_cat, ds3.item_cat)


# ---- generic csv / parquet -----------------------------------------------------------------------


def test_csv_named_columns_with_category_column(tmp_path):
    rows = make_rows(9)
    f = tmp_path / "log.csv"
    f.write_text(
        "ts,who,what,cat,extra\n"
        + "".join(f'{t},u{u},"item, {i}",c{c},"x ""q"""\n' for u, i, t, c in rows)  # quoted fields
    )
    ds = run(tmp_path, format="csv", input=str(f), user_col="who", item_col="what", time_col="ts", category_col="cat")
    exp_rows = [(f"u{u}", f"item, {i}", t, f"c{c}") for u, i, t, c in rows]
    assert_matches(ds, reference_protocol(exp_rows, MIN, MIN))


def test_csv_without_header_tab_delimiter_and_categories_file(tmp_path):
    rows = make_rows(10)
    f = tmp_path / "log.tsv"
    f.write_text("".join(f"{u}\t{i}\t{t}\n" for u, i, t, _ in rows))
    cats = tmp_path / "cats.tsv"
    side = sorted({(i, c) for _, i, _, c in rows})
    cats.write_text("item\tcategory\n" + "".join(f"{i}\tk{c}\n" for i, c in side))
    ds = run(
        tmp_path, format="csv", input=str(f), delimiter="tab", header=False,
        user_col="0", item_col="1", time_col="2", categories=str(cats),
    )  # fmt: skip
    exp = reference_protocol([(u, i, t, None) for u, i, t, _ in rows], MIN, MIN, side=[(i, f"k{c}") for i, c in side])
    assert_matches(ds, exp)
    assert ds.user_raw.dtype == np.int64  # integer raw ids come back as integers


def test_csv_iso_datetimes_and_file_order(tmp_path):
    rows = make_rows(11)
    base = datetime(2020, 1, 1)
    f = tmp_path / "log.csv"
    f.write_text(
        "user_id,item_id,timestamp\n"
        + "".join(f"{u},{i},{(base + timedelta(hours=t)).isoformat(sep=' ')}\n" for u, i, t, _ in rows)
    )
    ds = run(tmp_path / "a", format="csv", input=str(f))
    assert_matches(ds, reference_protocol([(u, i, t, None) for u, i, t, _ in rows], MIN, MIN))
    ds2 = run(tmp_path / "b", format="csv", input=str(f), time_col="")  # the file order is the time order
    assert_matches(ds2, reference_protocol([(u, i, n, None) for n, (u, i, _, _) in enumerate(rows)], MIN, MIN))


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = make_rows(12)
    table = pa.table(
        {
            "user_id": [f"u{u}" for u, *_ in rows],
            "item_id": [i for _, i, _, _ in rows],
            "timestamp": [float(t) + 0.5 for _, _, t, _ in rows],
            "genre": [f"g{c}" for *_, c in rows],
        }
    )
    f = tmp_path / "log.parquet"
    pq.write_table(table, f, row_group_size=100)
    ds = run(tmp_path / "a", format="parquet", input=str(f), category_col="genre")
    exp = reference_protocol([(f"u{u}", i, t, f"g{c}") for u, i, t, c in rows], MIN, MIN)
    assert_matches(ds, exp)
    ds2 = run(tmp_path / "b", format="csv", input=str(f), category_col="genre")  # .parquet under csv
    np.testing.assert_array_equal(ds.items, ds2.items)


# ---- the result is loadable and self-describing ------------------------------------------------------


def test_header_and_stats(tmp_path):
    rows = make_rows(13)
    f = tmp_path / "UserBehavior.csv"
    f.write_text("".join(f"{u},{i},{c},pv,{t}\n" for u, i, t, c in rows))
    ds = run(tmp_path, format="taobao", input=str(f), name="tiny")
    h = load_prepared(ds.path).header
    assert h["name"] == "tiny" and h["format_version"] == 1 and h["source"]["format"] == "taobao"
    s = h["stats"]
    assert (s["users"], s["items"], s["interactions"], s["categories"]) == (
        ds.n_users, ds.n_items, ds.n_interactions, ds.n_cats,
    )  # fmt: skip
    lengths = np.diff(ds.indptr)
    for code, name in enumerate(("train", "valid", "test")):
        part = s["splits"][name]
        mask = ds.split == code
        assert part["users"] == int(mask.sum())
        assert part["interactions"] == int(lengths[mask].sum())
        ev = np.repeat(mask, lengths)
        assert part["items"] == len(np.unique(ds.items[ev]))
        assert part["categories"] == len(np.unique(ds.item_cat[np.unique(ds.items[ev])]))
    assert "train" in ds.summary() and "tiny" in ds.summary()



def test_csv_with_byte_order_mark_crlf_and_no_final_newline(tmp_path):
    rows = make_rows(14)
    f = tmp_path / "log.csv"
    text = "user_id,item_id,timestamp\r\n" + "\r\n".join(f"{u},{i},{t}" for u, i, t, _ in rows)
    f.write_bytes(b"\xef\xbb\xbf" + text.encode())
    ds = run(tmp_path, format="csv", input=str(f), block_mb=1)
    assert_matches(ds, reference_protocol([(u, i, t, None) for u, i, t, _ in rows], MIN, MIN))
