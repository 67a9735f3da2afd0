"""`comirec recommend`: Parquet (or a prepared split) in, Parquet shards of top-n lists out; the
in-process loop and the Ray Data pipeline give what Recommender.recommend gives, user by user;
Recommender, aggregate and metrics work inside Ray workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pa = pytest.importorskip("pyarrow")
import pyarrow.dataset as pads  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from _models_helpers import make_synth, quick_train  # noqa: E402

import comirec  # noqa: E402
from comirec.config import RecommendConfig  # noqa: E402
from comirec.recommend import recommend  # noqa: E402
from comirec.serving import Recommender  # noqa: E402

try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install 'comirec[scale]')")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("recommend")
    ds = make_synth(root / "synth")
    run = quick_train(ds.path, root / "run", dataset=ds, max_steps=40)
    return ds, run


def users_file(ds, path: Path, unknown: bool = True) -> tuple[list, list]:  # type: ignore[no-untyped-def]
    """A Parquet file of raw-id histories (full sequences of some test users, one empty, one with an
    unknown raw id); returns (user ids, histories)."""
    users = ds.users("test")[:30]
    ids = [f"u{int(u)}" for u in users]
    hists = [ds.item_raw[ds.items[ds.indptr[u] : ds.indptr[u + 1]]].tolist() for u in users]
    hists[4] = []
    if unknown:
        hists[5] = hists[5] + [10**9]
    pq.write_table(pa.table({"user_id": ids, "history": hists}), path)
    return ids, hists


def read_out(out: Path) -> pa.Table:
    return pads.dataset(str(out), format="parquet").to_table()


def expected(run: Path, hists: list, n: int, lam: float) -> list[list]:  # type: ignore[type-arg]
    import warnings

    rec = Recommender.load(run)
    out = []
    for h in hists:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = rec.recommend(h, n=n, lam=lam, raw=True)
        out.append([i for i in r.items.tolist() if i is not None])
    return out


def test_local_engine_writes_one_row_per_user_as_recommend_would(trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds, run = trained
    ids, hists = users_file(ds, tmp_path / "users.parquet")
    cfg = RecommendConfig(run=str(run), users=str(tmp_path / "users.parquet"), out=str(tmp_path / "recs"), n=10, lam=0.2,
                          engine="local", batch_size=7)
    summary = recommend(cfg)
    assert summary["users"] == 30 and summary["shards"] == 5 and summary["engine"] == "local"
    assert set(summary["stage_seconds"]) == {"read", "embed", "rank", "write"}
    t = read_out(tmp_path / "recs")
    assert t.column_names == ["user_id", "items", "scores"]
    assert t.column("user_id").to_pylist() == ids  # local shards keep the input order
    got = t.column("items").to_pylist()
    assert got == expected(run, hists, 10, 0.2)
    assert all(len(g) == 10 for g in got)
    scores = t.column("scores").to_pylist()
    assert all(np.isnan(s).all() for s in [scores[4]])  # the empty history: popular fallback, NaN scores
    assert not np.isnan(scores[0]).any()
    assert not set(got[0]) & set(hists[0])  # seen items are excluded


def test_a_prepared_split_gets_its_evaluation_histories(trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds, run = trained
    cfg = RecommendConfig(run=str(run), data=str(ds.path), split="valid", out=str(tmp_path / "recs"), n=5, engine="local",
                          exclude_seen=False)
    recommend(cfg)
    t = read_out(tmp_path / "recs")
    users = ds.users("valid")
    assert t.column("user_id").to_pylist() == ds.user_raw[users].tolist()
    hists = []
    for u in users:
        seq = ds.items[ds.indptr[u] : ds.indptr[u + 1]]
        hists.append(ds.item_raw[seq[: len(seq) * 4 // 5]].tolist())
    rec = Recommender.load(run)
    want = [rec.recommend(h, n=5, raw=True, exclude_seen=False).items.tolist() for h in hists]
    assert t.column("items").to_pylist() == want


def test_bad_input_is_one_clear_error_and_writes_nothing(trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds, run = trained
    pq.write_table(pa.table({"user": [1], "history": [[1]]}), tmp_path / "nouser.parquet")
    pq.write_table(pa.table({"user_id": [1], "history": [1]}), tmp_path / "flat.parquet")
    (tmp_path / "text.parquet").write_text("not parquet")
    cases = [
        (["--users", str(tmp_path / "nouser.parquet")], "expected columns 'user_id' and 'history'"),
        (["--users", str(tmp_path / "flat.parquet")], "column 'history' must be a list of item ids, got type int64"),
        (["--users", str(tmp_path / "text.parquet")], "not a Parquet file or directory"),
        (["--users", str(tmp_path / "missing.parquet")], "does not exist"),
        ([], "give exactly one of --users"),
        (["--users", str(tmp_path / "flat.parquet"), "--data", str(ds.path)], "give exactly one of --users"),
        (["--data", str(ds.path), "--n", "0"], "n (list length N) must be an integer >= 1, got 0"),
        (["--data", str(ds.path), "--index", "IVF"], "--index"),
    ]
    for extra, message in cases:
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "comirec", "recommend", "--run", str(run), "--out", str(out), "--engine", "local",
                               *extra], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert message in proc.stderr, (extra, proc.stderr)
        assert not out.exists() and not list(tmp_path.glob(".out*")), extra
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        recommend(RecommendConfig(run=str(run), data=str(ds.path), out=str(tmp_path / "out"), engine="local"))


@needs_ray
@pytest.mark.parametrize("index", ["Flat", "IVF8,Flat"])
def test_ray_pipeline_gives_what_the_local_loop_gives(trained, tmp_path, index) -> None:  # type: ignore[no-untyped-def]
    """The same lists, user by user; with an IVF index too (built once, in the driver, and
    shipped to the actors: one built in each actor could have other lists)."""
    ds, run = trained
    ids, hists = users_file(ds, tmp_path / "users.parquet")
    local = RecommendConfig(run=str(run), users=str(tmp_path / "users.parquet"), out=str(tmp_path / "local"), n=10, lam=0.2,
                            engine="local", index=index, nprobe=2)
    recommend(local)
    cfg = RecommendConfig(run=str(run), users=str(tmp_path / "users.parquet"), out=str(tmp_path / "ray"), n=10, lam=0.2,
                          engine="ray", batch_size=8, workers=2, threads=1, index=index, nprobe=2)
    summary = recommend(cfg)
    assert summary["engine"] == "ray" and summary["users"] == 30
    assert {"embed", "rank", "write"} <= set(summary["stage_seconds"])  # from Ray's stats
    a, b = read_out(tmp_path / "local").to_pydict(), read_out(tmp_path / "ray").to_pydict()
    by_user = dict(zip(b["user_id"], b["items"]))
    assert sorted(b["user_id"]) == sorted(ids)  # one row per input user
    assert [by_user[u] for u in a["user_id"]] == a["items"]


def worker_inputs(ds, run: Path, users: np.ndarray) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    """What the worker tests compute in a worker and here: the Recommender, some users'
    histories and their lists (λ = 0.3), random candidate lists with their categories and
    targets, and their aggregation (λ = 0.5) and metrics."""
    rec = Recommender.load(run)
    hists = [ds.items[ds.indptr[u] : ds.indptr[u + 1]].astype(np.int64) for u in users]
    want = rec.recommend(hists, n=10, lam=0.3)
    rng = np.random.default_rng(0)
    items = rng.integers(1, 50, (4, 3, 20))
    scores = rng.random((4, 3, 20)).astype(np.float32)
    cats = rng.integers(0, 5, 51)
    targets = [[1, 2], [3], [4, 5, 6], [7]]
    local_agg = comirec.aggregate((items, scores), cats, lam=0.5, n=10)
    local_metrics = comirec.metrics(local_agg.items, targets, cats=cats, ks=(10,))
    return rec, hists, want, (items, scores, cats, targets), local_agg, local_metrics


@needs_ray
def test_recommender_aggregate_and_metrics_run_inside_ray_workers(trained) -> None:  # type: ignore[no-untyped-def]
    ds, run = trained
    rec, hists, want, (items, scores, cats, targets), local_agg, local_metrics = worker_inputs(ds, run, ds.users("test")[:5])

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote
        def serve(r: Recommender, h: list) -> np.ndarray:  # type: ignore[type-arg]
            return r.recommend(h, n=10, lam=0.3).items

        @ray.remote
        def agg_and_score() -> tuple:  # type: ignore[type-arg]
            out = comirec.aggregate((items, scores), cats, lam=0.5, n=10)
            return out.items, comirec.metrics(out.items, targets, cats=cats, ks=(10,))

        got = ray.get(serve.remote(rec, hists))
        got_items, got_metrics = ray.get(agg_and_score.remote())
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(got, want.items)
    np.testing.assert_array_equal(got_items, local_agg.items)
    assert got_metrics == local_metrics


def _spark_session():  # type: ignore[no-untyped-def]
    """A local Spark (2 cores) whose Python workers run this interpreter, or a skip saying why."""
    import os
    import shutil

    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'comirec[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs a Java runtime (17 or newer); none is on PATH and JAVA_HOME is unset")
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master("local[2]").appName("comirec-test")
            .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())


# py4j leaves its sockets to the JVM for the garbage collector after spark.stop()
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_recommender_aggregate_and_metrics_run_inside_spark_workers(trained) -> None:  # type: ignore[no-untyped-def]
    """The Recommender (pickled into the tasks' closures), comirec.aggregate and comirec.metrics
    run in Spark's Python workers and give what they give here: per user through an RDD, and over
    a DataFrame of raw-id histories with mapInArrow (what a Spark user writes)."""
    ds, run = trained
    spark = _spark_session()
    try:
        users = ds.users("test")[:12]
        rec, hists, want, (items, scores, cats, targets), local_agg, local_metrics = worker_inputs(ds, run, users)
        sc = spark.sparkContext

        def serve(part):  # type: ignore[no-untyped-def]
            part = list(part)
            out = rec.recommend([h for _, h in part], n=10, lam=0.3).items
            return [(i, row) for (i, _), row in zip(part, out)]

        got = dict(sc.parallelize(list(enumerate(hists)), 3).mapPartitions(serve).collect())
        np.testing.assert_array_equal(np.stack([got[i] for i in range(len(hists))]), want.items)

        def agg_and_score(_: object) -> list:  # type: ignore[type-arg]
            out = comirec.aggregate((items, scores), cats, lam=0.5, n=10)
            return [(out.items, comirec.metrics(out.items, targets, cats=cats, ks=(10,)))]

        [(got_items, got_metrics)] = sc.parallelize([0], 1).mapPartitions(agg_and_score).collect()
        np.testing.assert_array_equal(got_items, local_agg.items)
        assert got_metrics == local_metrics

        # a DataFrame of raw-id histories -> each user's top-n raw ids, Arrow batch by Arrow batch
        raw = [ds.item_raw[h].tolist() for h in hists]
        df = spark.createDataFrame([(f"u{int(u)}", h) for u, h in zip(users, raw)], "user_id string, history array<long>")

        def top_n(batches):  # type: ignore[no-untyped-def]
            import warnings

            for b in batches:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # unknown raw ids are dropped, as in recommend
                    out = rec.recommend(b.column("history").to_pylist(), n=10, lam=0.3, raw=True)
                top = [[i for i in row if i is not None] for row in out.items.tolist()]
                yield pa.RecordBatch.from_pydict({"user_id": b.column("user_id"), "items": top})

        rows = df.mapInArrow(top_n, "user_id string, items array<long>").collect()
        by_user = {r["user_id"]: r["items"] for r in rows}
        assert [by_user[f"u{int(u)}"] for u in users] == expected(run, raw, n=10, lam=0.3)
    finally:
        spark.stop()


def test_a_trained_index_travels_with_the_recommender(trained) -> None:  # type: ignore[no-untyped-def]
    """Pickling (what Ray and Spark do) ships an IVF index as faiss's bytes, the same index and
    the same lists; an exact index is rebuilt from the model instead (nothing extra to ship)."""
    import pickle

    faiss = pytest.importorskip("faiss")
    ds, run = trained
    hists = [ds.items[ds.indptr[u] : ds.indptr[u + 1]].astype(np.int64) for u in ds.users("test")[:20]]
    ivf = Recommender.load(run, factory="IVF8,Flat", nprobe=2)
    state = ivf.__getstate__()
    assert state["index"] is ivf.index
    copy = pickle.loads(pickle.dumps(ivf))
    assert bytes(faiss.serialize_index(copy.index._index)) == bytes(faiss.serialize_index(ivf.index._index))
    assert copy.index.nprobe == 2 and copy.index._index.nprobe == 2
    np.testing.assert_array_equal(copy.recommend(hists, n=10, lam=0.2).items, ivf.recommend(hists, n=10, lam=0.2).items)
    flat = Recommender.load(run)
    assert flat.__getstate__()["index"] is None
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(flat)).recommend(hists, n=10).items, flat.recommend(hists, n=10).items)
