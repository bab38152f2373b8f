"""Stage 4, train: a Spark ML classifier of the sources' classes, evaluated per domain.

Every labelled source of the corpus (:mod:`fruits.sources`: Fruits-360, the grocery photos, a
start-up's own folders) gives classes — one per (source, class path), e.g.
``grocery-store-real/Fruit/Pear/Kaiser`` — each of which is a fruit (``pear``), maybe one
variety (``Pear Abate``), or "not a fruit we know" (a real negative: packages, vegetables).
One ``pyspark.ml`` pipeline (:mod:`fruits.classifier`: scaler → PCA → multinomial LR) is fitted
on the ``Training`` split of every source — its own scaler and PCA included, so no held-out
image shapes the model. Answers are given per fruit and, when sure, per variety
(:mod:`fruits.answers`); every held-out split is evaluated per domain (:mod:`fruits.domains`).

When the training matrix fits in the driver's memory (``DRIVER_FIT_MAX_CELLS``) it is collected
once and fitted with numpy (:func:`fruits.classifier.fit_arrays`), else Spark fits it
(:func:`fruits.classifier.fit_dataframe`). Either way the saved ``PipelineModel`` is evaluated
as ``fruits-predict`` applies it (:class:`fruits.saved_pipeline.NumpyPipeline`): on the driver
for a small set, in a ``mapInPandas`` over the executors otherwise.

Features rows may carry a ``view`` column (0: the image; others: augmented views of training
images, test-time crops of held-out ones): training uses every view, evaluation averages an
image's class probabilities over its views.

Output folder (the date's current ``model`` run, published through its pointer):

* ``model/`` — the fitted ``PipelineModel`` (input column ``vector`` =
  ``array_to_vector("features")``); its labels are the classes;
* ``classes.json`` — each class's source, class path, fruit and variety, and the answer rules;
* ``reference/`` — Parquet ``label, image_id, features`` (``label``: the class): up to
  ``REFERENCE_PER_CLASS`` training images per class, for the "unknown" check of
  :mod:`fruits.novelty`;
* ``report.json`` — data, sources, settings, ``domains`` (per-domain figures), ``test`` (the
  ``Test`` split per class: accuracy, macro-F1, per-class figures, confusions, thresholds);
* ``confusion_matrix.png`` (``Test`` per class) and ``confusion/<domain>.png``.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pyspark.broadcast import Broadcast
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fruits import calibration, corpus, domains, evaluation, job, novelty, sources, storage
from fruits.answers import ClassLevels, Rules
from fruits.classifier import (
    CLASSIFIERS,
    INPUT_COL,
    ClassifierConfig,
    fit_arrays,
    fit_dataframe,
    fits_on_driver,
)
from fruits.config import (
    CALIBRATION_MAX_ROWS,
    CALIBRATION_SPLIT,
    EVAL_SPLIT,
    EVAL_SPLITS,
    MIN_SIMILARITY,
    PREDICT_THRESHOLD,
    REFERENCE_PER_CLASS,
    TEST_VIEWS,
    TRAIN_SPLIT,
    VARIETY_THRESHOLD,
)
from fruits.domains import features_matrix
from fruits.errors import InputError
from fruits.fruit_info import catalogue
from fruits.model import input_size
from fruits.pca import earlier_run, fingerprint
from fruits.saved_pipeline import NumpyPipeline

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
MAX_LISTED_ERRORS = 50
DEFAULT_SOURCE = "images"  # features written before sources existed
ROW_COLUMNS = ["path", "source", "split", "class", "image_id", "view", "features"]

Array = NDArray[Any]  # numpy arrays, any shape and dtype
Truth = dict[str, tuple[str | None, str | None]]  # class → (fruit, variety)
# What scoring on the executors needs, broadcast as one value.
Scoring = tuple[NumpyPipeline, ClassLevels, Rules, Truth, Array]


def with_classes(data: DataFrame) -> DataFrame:
    """Feature rows with ``source, source_root, class_path, view`` (defaults for rows that
    predate them: one source, the label as class path, view 0) and ``class``
    (:func:`fruits.sources.class_name`)."""
    defaults = {
        "source": F.lit(DEFAULT_SOURCE),
        "source_root": F.lit(None).cast("string"),
        "class_path": F.col("label"),
        "view": F.lit(0),
    }
    for name, value in defaults.items():
        if name not in data.columns:
            data = data.withColumn(name, value)
    return data.withColumn("class", F.concat_ws("/", "source", "class_path"))


def read_fruit_maps(roots: dict[str, str | None]) -> dict[str, tuple[sources.FruitMap, str]]:
    """Each source's mapping (``<root>/fruit_map.csv``) and its SHA-256, for the sources that
    have one."""
    maps = {}
    known = catalogue()
    for source, root in sorted(roots.items()):
        if not root:
            continue
        uri = storage.join(root, sources.FRUIT_MAP)
        if not storage.exists(uri):
            continue
        data = storage.read_bytes(uri)
        try:
            maps[source] = (sources.parse_fruit_map(data.decode("utf-8"), known), _sha(data))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{uri}: {exc}") from exc
    return maps


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def class_table(data: DataFrame) -> tuple[dict[str, sources.ClassInfo], dict[str, Any]]:
    """Every class of the corpus (what it is), and the sources' description for the report."""
    folders = data.select("source", "source_root", "class_path", "label").distinct().collect()
    roots = {r.source: r.source_root for r in folders}
    maps = read_fruit_maps(roots)
    table = sources.class_table(
        ((r.source, r.class_path, r.label) for r in folders),
        {source: fruit_map for source, (fruit_map, _) in maps.items()},
        catalogue(),
    )
    described = {
        source: {
            "root": root,
            "fruit_map": sources.FRUIT_MAP if source in maps else None,
            "fruit_map_sha256": maps[source][1] if source in maps else None,
        }
        for source, root in sorted(roots.items())
    }
    return table, described


def class_scores(pipeline: NumpyPipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """Per row: its class, the top class index and its probability (no view averaging)."""
    probabilities = pipeline.predict_proba(features_matrix(frame))
    return pd.DataFrame(
        {
            "path": frame["path"].to_numpy(),
            "class": frame["class"].to_numpy(),
            "prediction": probabilities.argmax(axis=1).astype(np.int32),
            "confidence": probabilities.max(axis=1),
        }
    )


def evaluate(scored: pd.DataFrame, labels: Sequence[str]) -> dict[str, Any]:
    """Class-level metrics of scored rows (``class``, ``prediction``, ``confidence``, ``path``);
    the confusion matrix is under ``matrix``."""
    index = {label: i for i, label in enumerate(labels)}
    truth = scored["class"].map(index).to_numpy(dtype=np.int64)
    predicted = scored["prediction"].to_numpy(dtype=np.int64)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    confidence = scored["confidence"].to_numpy()
    correct = truth == predicted
    n = len(scored)
    by_threshold = []
    for t in THRESHOLDS:
        kept = confidence >= t
        by_threshold.append(
            {
                "threshold": t,
                "answered": float(kept.mean()) if n else None,
                "accuracy_when_answered": float(correct[kept].mean()) if kept.any() else None,
            }
        )
    wrong = scored[~correct].sort_values(["confidence", "path"], ascending=[False, True])
    return {
        **evaluation.summarize(matrix, labels),
        "confusions": evaluation.confusions(matrix, labels),
        "by_threshold": by_threshold,
        "errors": [
            {
                "path": path,
                "label": label,
                "predicted": labels[int(prediction)],
                "confidence": round(float(confidence), 4),
            }
            for path, label, prediction, confidence in wrong.head(MAX_LISTED_ERRORS)[
                ["path", "class", "prediction", "confidence"]
            ].itertuples(index=False, name=None)
        ],
        "matrix": matrix,
    }


class DegenerateFit(InputError):
    """The training data gave no model worth publishing (e.g. duplicates, rank deficiency)."""


# A fit no better than this above always answering the commonest class is no model.
DEGENERATE_MARGIN = 0.05


def degenerate_fit(predicted: Array, truth: Array) -> str | None:
    """Why a fit, judged on its own training images, is no model; None when it is one.

    One class for every image, or a training accuracy within :data:`DEGENERATE_MARGIN` of the
    commonest class's share, means the optimiser found nothing to separate the classes.
    """
    classes = np.unique(truth)
    if len(truth) == 0 or len(classes) < 2:
        return None
    accuracy = float((predicted == truth).mean())
    majority = float(np.bincount(truth).max() / len(truth))
    if len(np.unique(predicted)) == 1:
        return (
            f"the fitted model gives every one of its {len(truth)} training images the same "
            f"class (training accuracy {accuracy:.3f}): are the training features duplicates "
            "or constant?"
        )
    if accuracy <= majority + DEGENERATE_MARGIN:
        return (
            f"training accuracy {accuracy:.3f} is no better than always answering the commonest "
            f"class ({majority:.3f} of the {len(truth)} training images): the fit found nothing "
            "that separates the classes"
        )
    return None


def reference_sample(train: DataFrame, per_class: int) -> DataFrame:
    """Up to ``per_class`` training images per class (lowest content hashes: deterministic),
    as Parquet ``label`` (the class), ``image_id``, ``features``; originals only, no views."""
    order = Window.partitionBy("class").orderBy("image_id")
    return (
        train.filter(F.col("view") == 0)
        .withColumn("n", F.row_number().over(order))
        .filter(F.col("n") <= per_class)
        .select(F.col("class").alias("label"), "image_id", "features")
    )


def novelty_report(reference: Array, scored: pd.DataFrame) -> dict[str, Any]:
    """Nearest-reference similarities of the reference set (leave-one-out) and per domain."""
    ref = novelty.unit_rows(reference)
    similarity = scored["similarity"].to_numpy()
    by_split = {
        f"{source}/{split}": novelty.percentiles(similarity[group.index.to_numpy()])
        for (source, split), group in scored.groupby(["source", "split"], sort=True)
    }
    return {
        "method": "cosine similarity of MobileNetV2 features to the nearest reference image",
        "min_similarity": MIN_SIMILARITY,
        "reference_images": len(ref),
        "reference_per_class": REFERENCE_PER_CLASS,
        "reference_similarity_leave_one_out": novelty.percentiles(
            novelty.nearest_similarity(ref, ref, leave_one_out=True)
        ),
        "similarity_by_source_split": by_split,
        "below_min_similarity": int((similarity < MIN_SIMILARITY).sum()),
    }


def _split(data: DataFrame, *splits: str) -> DataFrame:
    return data.filter(F.lower(F.col("split")).isin([s.lower() for s in splits]))


def _distinct(data: DataFrame) -> DataFrame:
    """One row per (content, class, view), in one partition per core.

    ``dropDuplicates`` alone shuffles into ``spark.sql.shuffle.partitions`` partitions (200 on
    a cluster), and a cached plan keeps them all (Spark does not coalesce cached plans): then
    every job on the training set, every iteration of a Spark fit, runs 200 tasks.
    Hash-partitioning by the same keys first makes the de-duplication use those partitions.
    """
    cores = data.sparkSession.sparkContext.defaultParallelism
    keys = ["image_id", "class", "view"]
    return data.repartition(cores, *keys).dropDuplicates(keys)


def _classes(train: DataFrame, split: str, root: str) -> tuple[int, int, list[str]]:
    """(training rows, training images, classes) of the training split."""
    counts = train.groupBy("class").agg(
        F.count("*").alias("rows"), F.sum((F.col("view") == 0).cast("int")).alias("images")
    )
    rows = counts.collect()
    classes = sorted(r["class"] for r in rows)
    n_rows, n_images = sum(int(r.rows) for r in rows), sum(int(r.images or 0) for r in rows)
    if len(classes) < 2:
        raise InputError(
            f"training needs images of at least 2 classes in the {split!r} split (folders named "
            f"{split}/<Label>/); the corpus under {root} has {n_images} images there"
        )
    return n_rows, n_images, classes


def _score_batches(
    shared: Broadcast[Scoring], frames: Iterable[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """:func:`fruits.domains.score` over Arrow batches sorted by path; an image whose views
    straddle two batches is held back until its last row has come."""
    pipeline, levels, rules, truth, reference = shared.value
    pending = None
    for frame in frames:
        frame = frame if pending is None else pd.concat([pending, frame], ignore_index=True)
        last = frame["path"].iloc[-1]
        complete = frame["path"] != last
        pending = frame[~complete]
        if complete.any():
            yield domains.score(pipeline, levels, rules, truth, frame[complete], reference)
    if pending is not None and len(pending):
        yield domains.score(pipeline, levels, rules, truth, pending, reference)


def score_images(
    pipeline: NumpyPipeline,
    levels: ClassLevels,
    rules: Rules,
    truth: Truth,
    rows: DataFrame | pd.DataFrame,
    reference: Array,
) -> pd.DataFrame:
    """One row of answers per image (:func:`fruits.domains.score`): on the driver for a
    pandas frame, in a ``mapInPandas`` for a Spark DataFrame (model, rules and reference
    travel as one broadcast; only the answers come back)."""
    if isinstance(rows, pd.DataFrame):
        return domains.score(pipeline, levels, rules, truth, rows, reference)
    sc = rows.sparkSession.sparkContext
    scoring: Scoring = (pipeline, levels, rules, truth, reference)
    shared = sc.broadcast(scoring)
    try:
        by_image = rows.repartition(sc.defaultParallelism, "path").sortWithinPartitions(
            "path", "view"
        )
        return by_image.mapInPandas(
            lambda frames: _score_batches(shared, frames), domains.SCORE_SCHEMA
        ).toPandas()
    finally:
        shared.destroy()


@dataclass(frozen=True)
class Splits:
    """The splits train fits on (``train``), reports per class (``eval``) and evaluates."""

    train: str
    eval: str
    evaluated: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "train_split": self.train,
            "eval_split": self.eval,
            "eval_splits": list(self.evaluated),
        }


def run(
    spark: SparkSession,
    run: job.JobRun,
    config: ClassifierConfig | None = None,
    train_split: str = TRAIN_SPLIT,
    eval_split: str = EVAL_SPLIT,
    eval_splits: Sequence[str] = EVAL_SPLITS,
) -> dict[str, Any]:
    """Fit on ``train_split`` of the corpus, evaluate every domain of ``eval_splits``; publish
    model, classes, reference set, report and plots as the date's ``model`` run (or make the
    earlier run that saw the same corpus and mappings with the same settings current again);
    return the stage report."""
    config = config or ClassifierConfig()
    if config.classifier not in CLASSIFIERS:
        raise InputError(f"--classifier must be one of {CLASSIFIERS}, got {config.classifier!r}")
    if config.k < 1:
        raise InputError(f"--k must be at least 1, got {config.k}")
    features = with_classes(corpus.with_views(corpus.current_features(spark, run.paths)))
    # Read once: the corpus query (latest event per path) feeds every job below.
    data = features.select(*ROW_COLUMNS, "source_root", "class_path", "label", "model_id")
    data = data.cache()
    try:
        splits = Splits(train_split, eval_split, tuple(eval_splits))
        return _fit_or_reuse(data, run, config, splits)
    finally:
        data.unpersist()


def _fit_or_reuse(
    data: DataFrame, run: job.JobRun, config: ClassifierConfig, splits: Splits
) -> dict[str, Any]:
    table, described = class_table(data)
    settings = {
        **config.as_dict(),
        **splits.as_dict(),
        "fruit_maps": {s: d["fruit_map_sha256"] for s, d in described.items()},
    }
    key, network = fingerprint(data, settings)
    earlier = earlier_run(run.paths.dataset("model"), key)
    if earlier is not None:
        published = run.reuse("model", earlier, {"input": key})
        report = storage.read_json(storage.join(earlier.uri, "report.json"))
        return {**summary(report), "output": published.uri, "reused": earlier.uri}
    data = data.select(*ROW_COLUMNS)
    train = _distinct(_split(data, splits.train)).cache()
    try:
        size = input_size(network or "")
        report = _train_and_write(train, data, table, described, run, config, splits, size)
    finally:
        train.unpersist()
    run.publish("model", report["n_train"], {"input": key})
    return summary(report)


def _train_and_write(
    train: DataFrame,
    data: DataFrame,
    table: dict[str, sources.ClassInfo],
    described: dict[str, Any],
    run: job.JobRun,
    config: ClassifierConfig,
    splits: Splits,
    size: int,
) -> dict[str, Any]:
    """Fit, evaluate and write the model run's files; the report. ``size``: the network input
    the features were computed at (fruits-predict decodes photos to it)."""
    output = run.output("model")
    n_rows, n_train, labels = _classes(train, splits.train, run.paths.root)
    first = train.first()
    if first is None:  # cannot happen: _classes found images of at least 2 classes
        raise RuntimeError(f"no training rows in the {splits.train!r} split")
    dim = len(first["features"])
    # n images span at most n - 1 directions around their mean: more components are noise.
    fitted = config.with_k(min(config.k, dim, n_rows - 1))
    held_out = _distinct(_split(data, *splits.evaluated))
    in_training = held_out.join(train.select("image_id"), "image_id", "left_semi")
    evaluated = held_out.join(train.select("image_id"), "image_id", "left_anti")
    train_rows: DataFrame | pd.DataFrame = train.select(*ROW_COLUMNS)
    eval_rows: DataFrame | pd.DataFrame = evaluated.select(*ROW_COLUMNS)
    if fits_on_driver(fitted, n_rows, dim):
        train_rows, eval_rows = train_rows.toPandas(), eval_rows.toPandas()
        index = {label: i for i, label in enumerate(labels)}
        y = train_rows["class"].map(index).to_numpy()
        model, fit_info = fit_arrays(fitted, labels, features_matrix(train_rows), y)
    else:
        vectors = train.withColumn(INPUT_COL, array_to_vector(F.col("features")))
        vectors = vectors.withColumn("label", F.col("class"))
        model, fit_info = fit_dataframe(fitted, labels, vectors)
    reference_rows = reference_sample(train, REFERENCE_PER_CLASS)
    reference = features_matrix(reference_rows.toPandas())
    trained = [table[c] for c in labels]
    truth = {c: (info.fruit, info.variety) for c, info in table.items()}
    levels = ClassLevels.build(labels, truth)
    test_views = _views_per_image(eval_rows)
    model.write().save(f"{output}/model")
    # Evaluated as saved, with the numpy pipeline and the answers fruits-predict gives.
    pipeline = NumpyPipeline.load(f"{output}/model")
    calibrated = _calibrate(pipeline, levels, truth, eval_rows)
    temperature = calibrated["temperature"]
    rules = Rules(PREDICT_THRESHOLD, VARIETY_THRESHOLD, MIN_SIMILARITY, temperature)
    scored = score_images(pipeline, levels, rules, truth, eval_rows, reference)
    figures = domains.domains(scored, levels)
    in_eval_split = (scored["split"].str.lower() == splits.eval.lower()).to_numpy()
    test_rows = scored[in_eval_split & scored["class"].isin(labels).to_numpy()]
    metrics = evaluate(test_rows, labels) if len(test_rows) else None
    originals = (
        train_rows[train_rows["view"] == 0]
        if isinstance(train_rows, pd.DataFrame)
        else train_rows.filter(F.col("view") == 0)
    )
    train_scores = _class_scores(pipeline, originals)
    index = {label: i for i, label in enumerate(labels)}
    train_predicted = train_scores["prediction"].to_numpy()
    train_classes = train_scores["class"].map(index).to_numpy()
    why = degenerate_fit(train_predicted, train_classes)
    if why:
        raise DegenerateFit(f"no model published: {why}")
    report = {
        "output": output,
        "reused": None,
        **splits.as_dict(),
        "sources": described,
        "classes": len(labels),
        "labels": labels,
        "fruits": list(levels.fruits),
        "varieties": list(levels.varieties),
        "n_train": n_train,
        "n_train_rows": n_rows,
        "n_test": len(test_rows),
        "n_evaluated": len(scored),
        "test_skipped_unseen_label": int((in_eval_split & ~scored["class"].isin(labels)).sum()),
        "test_skipped_also_in_training": _distinct_images(_split(in_training, splits.eval)),
        "config": fitted.as_dict(),
        "k_requested": config.k,
        "fit": fit_info,
        "calibration": calibrated,
        "stages": [type(s).__name__ for s in model.stages],
        "rules": _rules(rules, test_views, size),
        "threshold": PREDICT_THRESHOLD,
        "domains": figures,
        "train_accuracy": float((train_predicted == train_classes).mean()),
        "test": _without_matrix(metrics),
        "novelty": novelty_report(reference, scored),
    }
    reference_rows.write.parquet(f"{output}/reference")
    storage.write_json(
        f"{output}/classes.json",
        {"classes": [c.as_dict() for c in trained], "rules": _rules(rules, test_views, size)},
    )
    _write_plots(output, scored, figures, levels, metrics, labels, splits.eval, report)
    storage.write_json(f"{output}/report.json", report)
    return report


def _calibrate(
    pipeline: NumpyPipeline,
    levels: ClassLevels,
    truth: Truth,
    eval_rows: DataFrame | pd.DataFrame,
) -> dict[str, Any]:
    """The temperature of least fruit-level NLL on the ``CALIBRATION_SPLIT`` images (views
    averaged), or 1.0 without such images."""
    if isinstance(eval_rows, pd.DataFrame):
        rows = eval_rows[eval_rows["split"].str.lower() == CALIBRATION_SPLIT.lower()]
        rows = rows.head(CALIBRATION_MAX_ROWS)
    else:
        rows = _split(eval_rows, CALIBRATION_SPLIT).limit(CALIBRATION_MAX_ROWS).toPandas()
    if rows.empty:
        return {"split": CALIBRATION_SPLIT, "images": 0, "temperature": 1.0}
    image = pd.factorize(rows["path"])[0]
    firsts = rows.groupby(image, sort=True)["class"].first()
    index = {fruit: i for i, fruit in enumerate(levels.fruits)}
    fruit_truth = np.array([index.get(truth.get(c, (None, None))[0] or "", -1) for c in firsts])
    probabilities = pipeline.predict_proba(features_matrix(rows))
    temperature, before, after = calibration.fit_temperature(
        probabilities, image, fruit_truth, levels
    )
    return {
        "split": CALIBRATION_SPLIT,
        "images": len(fruit_truth),
        "temperature": round(temperature, 4),
        "nll_before": round(before, 4),
        "nll_after": round(after, 4),
    }


def _rules(rules: Rules, test_views: int, size: int) -> dict[str, Any]:
    """The answer rules, as fruits-predict applies them (``test_views``: views averaged per
    photo, as the evaluation averaged them; ``input_size``: the network input side)."""
    return {
        "threshold": rules.threshold,
        "variety_threshold": rules.variety_threshold,
        "min_similarity": rules.min_similarity,
        "temperature": rules.temperature,
        "test_views": test_views,
        "input_size": size,
    }


def _views_per_image(rows: DataFrame | pd.DataFrame) -> int:
    """:data:`TEST_VIEWS` when held-out images come with their test-time views, else 1."""
    if isinstance(rows, pd.DataFrame):
        most = int(rows["path"].value_counts().max()) if len(rows) else 1
    else:
        largest = rows.groupBy("path").count().agg(F.max("count")).first()
        if largest is None:
            raise RuntimeError("a global aggregation returned no row")
        most = largest[0] or 1
    return TEST_VIEWS if most >= TEST_VIEWS else 1


def _distinct_images(rows: DataFrame) -> int:
    return int(rows.select("image_id").distinct().count())


def _class_scores(pipeline: NumpyPipeline, rows: DataFrame | pd.DataFrame) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return class_scores(pipeline, rows)
    shared = rows.sparkSession.sparkContext.broadcast(pipeline)
    schema = "path string, class string, prediction int, confidence double"
    try:
        return rows.mapInPandas(
            lambda frames: (class_scores(shared.value, f) for f in frames), schema
        ).toPandas()
    finally:
        shared.destroy()


def _write_plots(
    output: str,
    scored: pd.DataFrame,
    figures: dict[str, dict[str, Any]],
    levels: ClassLevels,
    metrics: dict[str, Any] | None,
    labels: list[str],
    eval_split: str,
    report: dict[str, Any],
) -> None:
    """``confusion_matrix.png`` (classes, ``eval_split``) and one PNG per domain, named in the
    domain's figures (``confusion_png``)."""
    if metrics is not None:
        title = (
            f"{eval_split}: accuracy {metrics['accuracy']:.1%}, "
            f"macro-F1 {metrics['macro_f1']:.3f} ({metrics['n']} images)"
        )
        plot = evaluation.plot_confusion(metrics["matrix"], labels, title)
        storage.write_bytes(f"{output}/confusion_matrix.png", plot)
    masks = domains.domain_masks(scored, levels)
    for name, (level, mask) in masks.items():
        matrix, rows, columns = domains.confusion(scored[mask], level, levels)
        figure = figures[name]
        headline = (
            f"unknown {figure['unknown_rate']:.1%}"
            if level == "unknown"
            else f"top-1 {figure['top1']:.1%}, top-3 {figure['top3']:.1%}"
        )
        title = f"{name}: {headline} ({figure['n']} images)"
        png = evaluation.plot_confusion(matrix, rows, title, columns=columns)
        file = "confusion/" + name.replace("/", "__") + ".png"
        storage.write_bytes(f"{output}/{file}", png)
        figure["confusion_png"] = file
    report["domains"] = figures


def _without_matrix(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    rest = {k: v for k, v in metrics.items() if k != "matrix"}
    return {**rest, "confusion_matrix": np.asarray(metrics["matrix"]).tolist()}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The stage report: ``report.json`` without the per-class tables (those stay in the file)."""
    brief = {k: v for k, v in report.items() if k not in ("test", "labels", "fruits", "varieties")}
    test = report["test"]
    if test is not None:
        kept = ("n", "accuracy", "macro_precision", "macro_recall", "macro_f1", "by_threshold")
        brief["test"] = {k: test[k] for k in kept} | {"confusions": test["confusions"][:10]}
    else:
        brief["test"] = None
    return brief


def parser() -> argparse.ArgumentParser:
    defaults = ClassifierConfig()
    p = job.parser("Train and evaluate the fruit classifier (pyspark.ml pipeline).")
    p.add_argument("--classifier", choices=CLASSIFIERS, default=defaults.classifier)
    p.add_argument("--k", type=int, default=defaults.k, help="PCA components (default %(default)s)")
    p.add_argument(
        "--no-scale", dest="scale", action="store_false", help="no StandardScaler before the PCA"
    )
    p.add_argument("--reg-param", type=float, default=defaults.reg_param, help="lr: L2 strength")
    p.add_argument("--max-iter", type=int, default=defaults.max_iter)
    p.add_argument(
        "--hidden",
        type=lambda s: tuple(int(n) for n in s.split(",") if n),
        default=defaults.hidden,
        help="mlp: hidden layer sizes, comma-separated (default 256)",
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--train-split", default=TRAIN_SPLIT)
    p.add_argument("--eval-split", default=EVAL_SPLIT)
    return p


def _config(args: argparse.Namespace) -> ClassifierConfig:
    return ClassifierConfig(
        classifier=args.classifier,
        k=args.k,
        scale=args.scale,
        reg_param=args.reg_param,
        max_iter=args.max_iter,
        hidden=args.hidden,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return job.run_job(
        "train",
        argv,
        parser(),
        lambda spark, run_, a: run(spark, run_, _config(a), a.train_split, a.eval_split),
    )
