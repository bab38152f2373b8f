"""Per-image answers and per-domain figures: what the train stage reports for each source.

A **domain** is the held-out images of one source and split, judged at one level:

* ``<source>/<split>/variety`` — images whose class is one variety the model knows (Fruits-360
  Test): top-1/top-3 among varieties;
* ``<source>/<split>/fruit`` — images of a fruit the model knows (catalogue fruits: grocery
  apples, pears, …): top-1/top-3 among fruits, and how many get an answer, how many right;
* ``<source>/<split>/unknown`` — images that are not a fruit the model knows (packages,
  vegetables other than tomatoes, fruits it was never trained on): how many are answered
  ``unknown``.

:func:`score` turns feature rows into one row of answers per image (the classifier's class
probabilities, averaged over an image's views when it has several, e.g. test-time crops);
:func:`domains` computes every domain's figures from those rows. Pure numpy/pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fruits import novelty
from fruits.answers import ClassLevels, Rules, decide, top_k
from fruits.saved_pipeline import NumpyPipeline

Array = NDArray[Any]  # numpy arrays, any shape and dtype

TOP = 3
# One row per image: what it is (class, fruit, variety: None when not one), what was answered.
SCORE_SCHEMA = (
    "path string, source string, split string, class string, fruit string, variety string, "
    "prediction int, confidence double, not_fruit double, similarity double, "
    "answer_fruit int, answer_variety int, "
    + ", ".join(f"fruit_{i} int, fruit_p{i} double" for i in range(1, TOP + 1))
    + ", "
    + ", ".join(f"variety_{i} int, variety_p{i} double" for i in range(1, TOP + 1))
)
SCORE_COLUMNS = [c.split()[0] for c in SCORE_SCHEMA.split(", ")]


def features_matrix(frame: pd.DataFrame, column: str = "features") -> Array:
    """The ``features`` arrays of a pandas frame as one ``n×d`` float32 matrix."""
    if frame.empty:
        return np.zeros((0, 0), dtype=np.float32)
    matrix: Array = np.stack(frame[column].to_numpy()).astype(np.float32, copy=False)
    return matrix


def mean_by_image(paths: Array, probabilities: Array) -> tuple[Array, Array]:
    """(index of each image's first row, its rows' mean ``probabilities``): an image's views
    share its path. Images come sorted by path."""
    _, first, inverse = np.unique(paths, return_index=True, return_inverse=True)
    sums = np.zeros((len(first), probabilities.shape[1]))
    np.add.at(sums, inverse, probabilities)
    return first, sums / np.bincount(inverse)[:, None]


def score(
    pipeline: NumpyPipeline,
    levels: ClassLevels,
    rules: Rules,
    truth: Mapping[str, tuple[str | None, str | None]],
    frame: pd.DataFrame,
    reference: Array | None = None,
) -> pd.DataFrame:
    """One row of answers per image of ``frame`` (``path, source, split, class, features``
    rows, maybe ``view``; an image's views — rows of one path — are averaged).
    ``truth[class]`` is the class's (fruit, variety); the similarity is that of the image
    itself (view 0, else its first row)."""
    if frame.empty:
        return pd.DataFrame({c: [] for c in SCORE_COLUMNS})
    if "view" in frame.columns:  # each image's first row: the image itself (view 0)
        frame = frame.sort_values(["path", "view"], kind="stable")
    x = features_matrix(frame)
    first, means = mean_by_image(frame["path"].to_numpy(), pipeline.predict_proba(x))
    probabilities = rules.calibrated(means)
    images = frame.iloc[first]
    similarity = np.full(len(images), np.nan)
    if reference is not None and len(reference):
        own = novelty.unit_rows(x[first])
        similarity = novelty.nearest_similarity(own, novelty.unit_rows(reference)).astype(float)
    answers = decide(levels, probabilities, rules, None if reference is None else similarity)
    fruit_p, not_fruit = levels.fruit_probabilities(probabilities)
    fruits, fruit_values = _top(fruit_p)
    varieties, variety_values = _top(levels.variety_probabilities(probabilities))
    out = {
        "path": images["path"].to_numpy(),
        "source": images["source"].to_numpy(),
        "split": images["split"].to_numpy(),
        "class": images["class"].to_numpy(),
        "fruit": [truth.get(c, (None, None))[0] for c in images["class"]],
        "variety": [truth.get(c, (None, None))[1] for c in images["class"]],
        "prediction": probabilities.argmax(axis=1).astype(np.int32),
        "confidence": probabilities.max(axis=1),
        "not_fruit": not_fruit,
        "similarity": similarity,
        "answer_fruit": answers.fruit.astype(np.int32),
        "answer_variety": answers.variety.astype(np.int32),
    }
    for i in range(TOP):
        out[f"fruit_{i + 1}"] = fruits[:, i]
        out[f"fruit_p{i + 1}"] = fruit_values[:, i]
        out[f"variety_{i + 1}"] = varieties[:, i]
        out[f"variety_p{i + 1}"] = variety_values[:, i]
    return pd.DataFrame(out)[SCORE_COLUMNS]


def _top(probabilities: Array) -> tuple[Array, Array]:
    """The top :data:`TOP` indices and values per row, padded with -1 and 0."""
    n = len(probabilities)
    index, values = np.full((n, TOP), -1, dtype=np.int32), np.zeros((n, TOP))
    if probabilities.shape[1]:
        order, top = top_k(probabilities, TOP)
        index[:, : order.shape[1]], values[:, : top.shape[1]] = order, top
    return index, values


def _ranks(rows: pd.DataFrame, prefix: str, truth: Array) -> tuple[Array, Array]:
    top = np.column_stack([rows[f"{prefix}_{i}"].to_numpy() for i in range(1, TOP + 1)])
    return top[:, 0] == truth, (top == truth[:, None]).any(axis=1)


def known_domain(rows: pd.DataFrame, levels: ClassLevels, level: str) -> dict[str, Any]:
    """Figures at ``level`` (``fruit`` or ``variety``) of images of a fruit or variety the model
    knows: top-1/top-3 among that level's names, how many get an answer, how many right."""
    names = levels.fruits if level == "fruit" else levels.varieties
    index = {name: i for i, name in enumerate(names)}
    truth = rows[level].map(index).to_numpy(dtype=np.int64)
    top1, top3 = _ranks(rows, level, truth)
    answered = rows[f"answer_{level}"].to_numpy() >= 0
    right = rows[f"answer_{level}"].to_numpy() == truth
    return {
        "level": level,
        "n": len(rows),
        "top1": float(top1.mean()),
        "top3": float(top3.mean()),
        "answered": float(answered.mean()),
        "accuracy_when_answered": float(right[answered].mean()) if answered.any() else None,
        "right_answers": float(right.mean()),
    }


def refusal_domain(rows: pd.DataFrame, levels: ClassLevels) -> dict[str, Any]:
    """How often images that are no fruit the model knows are answered ``unknown``."""
    answers = rows["answer_fruit"].to_numpy()
    wrong = pd.Series([levels.fruits[i] for i in answers if i >= 0], dtype=object)
    return {
        "level": "unknown",
        "n": len(rows),
        "unknown_rate": float((answers < 0).mean()),
        "answered_as": {str(k): int(v) for k, v in wrong.value_counts().items()},
    }


def domain_masks(scored: pd.DataFrame, levels: ClassLevels) -> dict[str, tuple[str, Array]]:
    """``name → (level, row mask)`` for every domain with images, sorted by name."""
    known_fruit = scored["fruit"].isin(levels.fruits).to_numpy()
    known_variety = scored["variety"].isin(levels.varieties).to_numpy()
    out: dict[str, tuple[str, Array]] = {}
    pairs = scored[["source", "split"]].drop_duplicates().itertuples(index=False)
    for source, split in sorted(pairs):
        mask = (scored["source"] == source).to_numpy() & (scored["split"] == split).to_numpy()
        for level, rows in (
            ("variety", mask & known_variety),
            ("fruit", mask & known_fruit),
            ("unknown", mask & ~known_fruit),
        ):
            if rows.any():
                out[f"{source}/{split}/{level}"] = (level, rows)
    return dict(sorted(out.items()))


def domains(scored: pd.DataFrame, levels: ClassLevels) -> dict[str, dict[str, Any]]:
    """Every domain's figures (see the module docstring), by name."""
    out = {}
    for name, (level, mask) in domain_masks(scored, levels).items():
        source, split, _ = name.rsplit("/", 2)
        rows = scored[mask]
        figures = (
            refusal_domain(rows, levels)
            if level == "unknown"
            else known_domain(rows, levels, level)
        )
        out[name] = {"source": source, "split": split, **figures}
    return out


def confusion(
    rows: pd.DataFrame, level: str, levels: ClassLevels
) -> tuple[Array, list[str], list[str]]:
    """A domain's confusion matrix (true × answered, row labels, column labels).

    ``fruit``: true fruit × answer (``unknown`` included); ``variety``: true variety × top-1
    variety; ``unknown``: class group (first two folders of the class path) × answer.
    """
    unknown = "unknown"
    if level == "variety":
        true = rows["variety"].tolist()
        said = [levels.varieties[i] for i in rows["variety_1"]]
    else:
        said = [levels.fruits[i] if i >= 0 else unknown for i in rows["answer_fruit"]]
        if level == "fruit":
            true = rows["fruit"].tolist()
        else:
            true = ["/".join(c.split("/")[1:3]) for c in rows["class"]]
    row_labels = sorted(set(true))
    column_labels = sorted(set(said) - {unknown}) + ([unknown] if unknown in said else [])
    if level != "unknown":  # the diagonal first: every true label is also a column
        column_labels = [*row_labels, *[c for c in column_labels if c not in row_labels]]
    matrix = np.zeros((len(row_labels), len(column_labels)), dtype=np.int64)
    r, c = {v: i for i, v in enumerate(row_labels)}, {v: i for i, v in enumerate(column_labels)}
    for t, s in zip(true, said, strict=True):
        matrix[r[t], c[s]] += 1
    return matrix, row_labels, column_labels
