"""Daily runs at the cost of the new photos, reruns, and publishing that survives any crash."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from fruits import catalog, corpus, pca, storage
from pipeline import current, current_uri, job, paths, publish_corpus, run_stages
from samples import copy_subset

CLASSES = ["Cherry 1", "Peach", "Plum", "Mango"]
DAYS = ("2026-03-01", "2026-03-02", "2026-03-03")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _on_disk(images: Path) -> dict[str, str]:
    return {f"file:{p}": _sha(p) for p in images.rglob("*.jpg")}


@pytest.fixture(scope="module")
def three_days(spark, sample_dir, weights_path, tmp_path_factory):
    """Day 1: 40 photos. Day 2: 2 new ones (5 %). Day 3: 3 deleted, 2 modified."""
    base = tmp_path_factory.mktemp("days")
    images = copy_subset(sample_dir, base / "in", CLASSES, per_class=5)
    root = base / "out"
    reports, corpora = {}, {}

    def day(ds: str, stages=("load", "featurize", "pca")) -> None:
        run_paths = paths([images], root, ds)
        reports[ds] = run_stages(spark, run_paths, weights_path, stages, k=4)
        corpora[ds] = {
            r.path: (r.image_id, np.asarray(r.features))
            for r in corpus.current_features(spark, run_paths).collect()
        }

    day(DAYS[0])
    extra = copy_subset(sample_dir, base / "extra", ["Lemon"], per_class=1)
    shutil.copytree(extra, images, dirs_exist_ok=True)
    day(DAYS[1])
    files = sorted(images.rglob("*.jpg"))
    for gone in files[:3]:
        gone.unlink()
    for changed, other in zip(files[3:5], files[-2:], strict=True):
        changed.write_bytes(other.read_bytes())  # new content under the same name
        os.utime(changed, (time.time() + 5, time.time() + 5))
    day(DAYS[2], ("load", "featurize", "pca", "train"))
    return images, root, reports, corpora


def test_each_day_reads_only_what_is_new_or_changed(three_days):
    _, _, reports, _ = three_days
    load = {ds: reports[ds]["load"] for ds in DAYS}
    counts = ("listed", "new", "changed", "unchanged", "deleted", "loaded")
    assert [load[DAYS[0]][c] for c in counts] == [40, 40, 0, 0, 0, 40]
    assert [load[DAYS[1]][c] for c in counts] == [42, 2, 0, 40, 0, 2]
    assert [load[DAYS[2]][c] for c in counts] == [39, 0, 2, 37, 3, 2]
    featurize = {ds: reports[ds]["featurize"] for ds in DAYS}
    assert [featurize[ds]["featurized"] for ds in DAYS] == [40, 2, 2]
    assert featurize[DAYS[1]]["computed"] == 2
    # Day 3's "changed" files now hold bytes already featurized on day 1 or 2: reused.
    assert (featurize[DAYS[2]]["computed"], featurize[DAYS[2]]["reused"]) == (0, 2)
    assert featurize[DAYS[2]]["deleted"] == 3


def test_the_corpus_is_exactly_the_files_on_disk(three_days, spark):
    images, _, reports, corpora = three_days
    final = corpora[DAYS[2]]
    assert {p: image_id for p, (image_id, _) in final.items()} == _on_disk(images)
    assert len(corpora[DAYS[0]]) == 40 and len(corpora[DAYS[1]]) == 42
    # A modified file's vector is its new content's, a copy of another file's.
    vectors_by_id = {image_id: v for image_id, v in final.values()}
    for image_id, vector in final.values():
        np.testing.assert_array_equal(vector, vectors_by_id[image_id])
    assert [reports[ds]["pca"]["n_images"] for ds in DAYS] == [40, 42, 39]
    training = [p for p in final if "/Training/" in p]
    assert reports[DAYS[2]]["train"]["n_train"] == len({final[p][0] for p in training})


def test_only_partition_folders_have_an_equals_sign(three_days):
    _, root, _, _ = three_days
    for folder in root.rglob("*"):
        if folder.is_dir() and "=" in folder.name:
            relative = folder.relative_to(root).parts
            assert re.fullmatch(r"ds=\d{4}-\d\d-\d\d", relative[1]), folder
            assert len(relative) == 2 or re.fullmatch(r"run=\w+-\w+", relative[2]), folder


def test_images_keep_bytes_of_the_new_files_only(three_days, spark):
    images, root, _, _ = three_days
    sizes = {
        ds: sum(len(bytes(r.content or b"")) for r in current(spark, paths([images], root, ds),
                                                               "images").collect())
        for ds in DAYS
    }  # fmt: skip
    assert sizes[DAYS[1]] < sizes[DAYS[0]] / 10 and sizes[DAYS[2]] < sizes[DAYS[0]] / 10


def test_rerunning_a_date_gives_the_same_current_data_in_a_new_run(three_days, spark, weights_path):
    images, root, _, _ = three_days
    day2 = paths([images], root, DAYS[1])
    before = {r.path: r for r in current(spark, day2, "features").collect()}
    old_run = current_uri(day2, "features")
    run_stages(spark, day2, weights_path, ("load", "featurize"))
    after = {r.path: r for r in current(spark, day2, "features").collect()}
    assert current_uri(day2, "features") != old_run
    assert not storage.exists(old_run)  # superseded and past its (zero) retention
    # Today's listing differs from day 2's (day 3 happened), yet the rerun compares it with
    # the days before day 2 only: the same new files, plus what day 3 changed or deleted.
    assert set(before) <= set(after)
    for path, row in before.items():
        assert (after[path].image_id, after[path].status) == (row.image_id, row.status)
    final = corpus.current_features(spark, paths([images], root, DAYS[2])).collect()
    assert {r.path: r.image_id for r in final} == _on_disk(images)  # day 3 still wins


@pytest.fixture
def published(spark, three_days, tmp_path):
    """A corpus and one published pca run, in a fresh root."""
    images, root, _, _ = three_days
    features = corpus.current_features(spark, paths([images], root, DAYS[2]))
    run_paths = paths([], tmp_path, "2026-04-01")
    publish_corpus(features.drop("ds"), run_paths)
    first = pca.run(spark, job(run_paths), k=3)
    return run_paths, first


def _readers_see(spark, run_paths, expected_k: int) -> None:
    run = catalog.current(run_paths.partition("pca"))
    report = storage.read_json(f"{run.uri}/report.json")
    vectors = spark.read.parquet(f"{run.uri}/vectors")
    assert report["k"] == expected_k
    assert {len(r.pca_features) for r in vectors.collect()} == {expected_k}


def _fail(*args, **kwargs):
    raise RuntimeError("crash injected")


@pytest.mark.parametrize("step", ["data", "pointer", "cleanup"])
def test_a_crash_at_any_publishing_step_leaves_readers_on_a_whole_output(
    spark, published, monkeypatch, step
):
    """Crash while the data is written, right after it (before the pointer), or after the
    pointer (before old runs are deleted): readers see the old run or the new one, whole; the
    next run needs no cleanup by hand."""
    run_paths, _ = published
    if step == "data":  # a task fails midway through writing the vectors
        failing = F.raise_error(F.concat(F.lit("crash injected at "), F.col("path")))
        monkeypatch.setattr(pca, "vector_to_array", lambda *a: failing.cast("array<float>"))
    elif step == "pointer":
        monkeypatch.setattr(catalog, "publish", _fail)
    else:
        monkeypatch.setattr(catalog, "cleanup", _fail)
    with pytest.raises(Exception, match="crash injected"):
        pca.run(spark, job(run_paths), k=5)
    _readers_see(spark, run_paths, 5 if step == "cleanup" else 3)
    runs = list(Path(run_paths.partition("pca")).glob("run=*"))
    assert len(runs) == 2  # the left-over folder (new, partial, or the superseded old one)

    monkeypatch.undo()
    pca.run(spark, job(run_paths), k=6)
    _readers_see(spark, run_paths, 6)
    assert [p.name for p in Path(run_paths.partition("pca")).glob("run=*")] == [
        Path(current_uri(run_paths, "pca")).name
    ]


def test_readers_never_see_a_partial_parquet_run(spark, published, monkeypatch):
    """The corpus reader (pca, train) reads only the runs pointers name: a half-written
    features folder beside them changes nothing."""
    run_paths, _ = published
    before = corpus.current_features(spark, run_paths).count()
    partial = Path(catalog.run_uri(run_paths.partition("features"), catalog.new_run_id()))
    partial.mkdir(parents=True)
    (partial / "part-00000-broken.snappy.parquet").write_bytes(b"PAR1 half a file")
    assert corpus.current_features(spark, run_paths).count() == before
