"""From class probabilities to answers at two levels: the fruit, then (when sure) the variety.

The classifier's classes are the sources' class folders (:mod:`fruits.sources`): each is one
fruit (``pear``), or "not a fruit we know" (a real negative: a milk carton, a carrot), and
maybe one variety (``Pear Abate``). A fruit's probability is the sum over its classes, a
variety's the sum over the classes that are that variety. Pure numpy: prediction
(:mod:`fruits.predict`) and the train stage's evaluation answer with the same code.

A photo gets a fruit when (1) it is like some training image (:mod:`fruits.novelty`), (2) the
fruit's probability reaches ``threshold`` and (3) beats "not a fruit"; it then gets a variety
of that fruit when the variety's probability reaches ``variety_threshold``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]  # numpy arrays, any shape and dtype

UNKNOWN = "unknown"


@dataclass(frozen=True)
class ClassLevels:
    """How the classifier's classes add up to fruits and varieties."""

    classes: tuple[str, ...]
    fruits: tuple[str, ...]  # known fruits, sorted
    varieties: tuple[str, ...]  # known varieties, sorted
    fruit_of_class: Array  # index into fruits, -1: not a fruit we know
    variety_of_class: Array  # index into varieties, -1: no single variety
    fruit_of_variety: Array  # index into fruits

    @classmethod
    def build(
        cls, classes: Iterable[str], what: Mapping[str, tuple[str | None, str | None]]
    ) -> ClassLevels:
        """``what[class] = (fruit or None, variety or None)`` for each of ``classes``."""
        classes = tuple(classes)
        fruits = tuple(sorted({f for c in classes if (f := what[c][0])}))
        pairs: dict[str, str] = {}
        for c in classes:
            fruit, variety = what[c]
            if fruit and variety:
                pairs[variety] = fruit
        varieties = tuple(sorted(pairs))
        f_index = {f: i for i, f in enumerate(fruits)}
        v_index = {v: i for i, v in enumerate(varieties)}
        fruit_of_class = np.array(
            [f_index.get(what[c][0] or "", -1) for c in classes], dtype=np.int64
        )
        variety_of_class = np.array(
            [v_index.get(what[c][1] or "", -1) if what[c][0] else -1 for c in classes],
            dtype=np.int64,
        )
        fruit_of_variety = np.array([f_index[pairs[v]] for v in varieties], dtype=np.int64)
        return cls(classes, fruits, varieties, fruit_of_class, variety_of_class, fruit_of_variety)

    def _sum(self, probabilities: Array, groups: Array, n: int) -> Array:
        p = np.atleast_2d(probabilities)
        out = np.zeros((len(p), n + 1))
        np.add.at(out.T, groups, p.T)  # group -1 lands in the last column
        return out

    def fruit_probabilities(self, probabilities: Array) -> tuple[Array, Array]:
        """(``n × fruits``, ``n``): each known fruit's probability, and "not a fruit"'s."""
        out = self._sum(probabilities, self.fruit_of_class, len(self.fruits))
        return out[:, :-1], out[:, -1]

    def variety_probabilities(self, probabilities: Array) -> Array:
        """``n × varieties``: each variety's probability."""
        return self._sum(probabilities, self.variety_of_class, len(self.varieties))[:, :-1]


@dataclass(frozen=True)
class Rules:
    """When to answer; see the module docstring. ``temperature`` calibrates the class
    probabilities of a photo (its views averaged) before any rule (:mod:`fruits.calibration`)."""

    threshold: float
    variety_threshold: float
    min_similarity: float | None  # None: no novelty check
    temperature: float = 1.0

    def calibrated(self, probabilities: Array) -> Array:
        """The same ranking, probabilities that mean what they say (:func:`tempered`)."""
        p = np.atleast_2d(probabilities)
        return p if self.temperature == 1.0 else tempered(p, self.temperature)


def tempered(probabilities: Array, temperature: float) -> Array:
    """``softmax(log p / T)`` (for ``p = softmax(z)``: ``softmax(z / T)``)."""
    logits = np.log(np.clip(probabilities, 1e-300, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out: Array = np.exp(logits)
    out /= out.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class Answers:
    """Answers for ``n`` photos; index -1 means no answer at that level."""

    fruit: Array  # index into fruits, or -1 (unknown)
    variety: Array  # index into varieties, or -1
    reason: list[str | None]  # why the fruit is unknown


def decide(
    levels: ClassLevels,
    probabilities: Array,
    rules: Rules,
    similarity: Array | None = None,
) -> Answers:
    """The fruit and variety answers for rows of (calibrated: :meth:`Rules.calibrated`) class
    ``probabilities``."""
    fruit_p, not_fruit = levels.fruit_probabilities(probabilities)
    variety_p = levels.variety_probabilities(probabilities)
    n = len(fruit_p)
    best = fruit_p.argmax(axis=1) if fruit_p.shape[1] else np.full(n, -1)
    best_p = fruit_p.max(axis=1) if fruit_p.shape[1] else np.zeros(n)
    fruit = np.full(n, -1, dtype=np.int64)
    variety = np.full(n, -1, dtype=np.int64)
    reasons: list[str | None] = []
    for i in range(n):
        reason = None
        cut = rules.min_similarity
        if similarity is not None and cut is not None and similarity[i] < cut:
            reason = f"unlike every training image (similarity {similarity[i]:.2f} < {cut:.2f})"
        if reason is None and not_fruit[i] >= best_p[i]:
            reason = f"not a fruit we know ({not_fruit[i]:.2f})"
        if reason is None and best_p[i] < rules.threshold:
            reason = f"low confidence ({best_p[i]:.2f} < {rules.threshold:.2f})"
        reasons.append(reason)
        if reason is not None:
            continue
        fruit[i] = best[i]
        of_fruit = np.flatnonzero(levels.fruit_of_variety == best[i])
        if len(of_fruit):
            top = of_fruit[variety_p[i, of_fruit].argmax()]
            if variety_p[i, top] >= rules.variety_threshold:
                variety[i] = top
    return Answers(fruit, variety, reasons)


def top_k(probabilities: Array, k: int) -> tuple[Array, Array]:
    """Indices and values of the ``k`` largest entries of each row, largest first."""
    p = np.atleast_2d(probabilities)
    k = min(k, p.shape[1])
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(p, order, axis=1)
