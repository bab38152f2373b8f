"""What a run costs on EMR: its cluster time, from the measured throughput, times the price.

Assumptions, from docs/architecture.md (measured on 2 vCPU with the Fruits-360 sample's
100x100 JPEGs) and stated again in docs/aws.md, "Costs":

* :data:`CORE_SECONDS_PER_IMAGE`: load ≈ 13 and featurize ≈ 19 core-ms per image, pca < 1,
  doubled for S3 reads and writes and YARN: 0.07 core-s per image, spread over every task slot;
  featurize's share grows with the network input's area (:func:`core_seconds_per_image`);
* :data:`CLUSTER_START_S`: provisioning and the bootstrap (a TensorFlow virtualenv per node);
* :data:`STAGE_FIXED_S`: per-step costs that do not grow with the images (spark-submit and
  YARN start, TensorFlow imports, train's fixed ~5 min) and, per step, half the sensors' poke
  interval before the next step is added;
* phone photos decode far slower than 100x100 thumbnails (not measured here): the estimate is a
  floor for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fruits.config import IMAGE_SIZE
from fruits.model import input_area
from fruits_airflow.capacity import Capacity

CORE_SECONDS_PER_IMAGE = 0.07  # at a 224 input
FEATURIZE_CORE_SECONDS_PER_IMAGE = 2 * 0.019  # its featurize share, doubled as above
CLUSTER_START_S = 12 * 60
STAGE_FIXED_S = {"load": 90, "featurize": 120, "pca": 90, "train": 390}


@dataclass(frozen=True)
class RunEstimate:
    images: int
    cluster_s: float  # cluster lifetime: start, fixed per-step costs, the images' work
    usd: float  # every node on demand

    @property
    def hours(self) -> float:
        return self.cluster_s / 3600


def core_seconds_per_image(input_size: int = IMAGE_SIZE) -> float:
    """Core-seconds per new image; MobileNetV2's work grows with the input's area."""
    return CORE_SECONDS_PER_IMAGE + FEATURIZE_CORE_SECONDS_PER_IMAGE * (input_area(input_size) - 1)


def estimate(capacity: Capacity, images: int, input_size: int = IMAGE_SIZE) -> RunEstimate:
    """The cluster time and On-Demand cost of one run over ``images`` new images featurized at
    ``input_size``."""
    if capacity.task_slots == 0:
        raise ValueError("no executor fits this cluster: nothing to estimate")
    work_s = images * core_seconds_per_image(input_size) / capacity.task_slots
    cluster_s = CLUSTER_START_S + sum(STAGE_FIXED_S.values()) + work_s
    return RunEstimate(images, cluster_s, cluster_s / 3600 * capacity.usd_per_hour)
