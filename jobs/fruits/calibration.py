"""Temperature scaling (Guo et al., ICML 2017): probabilities that mean what they say.

A logistic regression fitted with L2 on a few images per class is under-confident on held-out
photos, and averaging test-time views flattens it further. One temperature ``T`` rescales a
photo's class probabilities (``softmax(log p / T)``, after its views are averaged) and is
chosen to minimise the negative log-likelihood of held-out images at the level users are
answered at — the fruit, or "not a fruit we know". The ranking never changes, only how sure
the model says it is; :class:`fruits.answers.Rules` carries ``T`` to every answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from fruits.answers import ClassLevels, tempered

Array = NDArray[Any]  # numpy arrays, any shape and dtype

__all__ = ["fit_temperature", "fruit_nll", "image_means", "tempered"]

TEMPERATURES = np.exp(np.linspace(np.log(0.2), np.log(5.0), 81))


def image_means(probabilities: Array, image: Array) -> Array:
    """Mean of the rows of each image (``image``: the image index of each row, 0..n-1)."""
    sums = np.zeros((int(image.max()) + 1, probabilities.shape[1]))
    np.add.at(sums, image, probabilities)
    return sums / np.bincount(image)[:, None]


def fruit_nll(probabilities: Array, truth: Array, levels: ClassLevels) -> float:
    """Mean negative log-likelihood of each image's true fruit (``truth``: index into
    ``levels.fruits``, -1 for "not a fruit we know")."""
    fruit_p, not_fruit = levels.fruit_probabilities(probabilities)
    rows = np.arange(len(truth))
    p = np.where(truth >= 0, fruit_p[rows, np.maximum(truth, 0)], not_fruit)
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(
    probabilities: Array, image: Array, truth: Array, levels: ClassLevels
) -> tuple[float, float, float]:
    """(T, NLL at T = 1, NLL at T) for rows of class ``probabilities`` (``image``: each row's
    image, 0..n-1; views are averaged first): the temperature of least NLL on a log grid of
    0.2–5 (81 points), then refined around it."""
    means = image_means(probabilities, image)

    def nll(t: float) -> float:
        return fruit_nll(tempered(means, t), truth, levels)

    scores = [nll(t) for t in TEMPERATURES]
    best = int(np.argmin(scores))
    low = TEMPERATURES[max(best - 1, 0)]
    high = TEMPERATURES[min(best + 1, len(TEMPERATURES) - 1)]
    fine = np.linspace(low, high, 21)
    refined = [nll(t) for t in fine]
    t = float(fine[int(np.argmin(refined))])
    return t, nll(1.0), float(min(refined))
