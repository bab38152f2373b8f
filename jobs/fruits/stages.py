"""The pipeline as data: one list of stages and the paths of one run.

The Airflow DAG turns each stage into an EMR step, the local runner into a local
``spark-submit``; both build the job arguments here, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fruits.config import DEFAULT_VARIANCE, DEFAULT_WEIGHTS


@dataclass(frozen=True)
class RunPaths:
    """Where the run for logical date ``ds`` reads images and writes outputs (URIs)."""

    input: str
    root: str
    ds: str

    def dataset(self, name: str) -> str:
        """The root of a dataset, all dates (e.g. every ``features/ds=…`` partition)."""
        return f"{self.root.rstrip('/')}/{name}"

    def _under(self, dataset: str) -> str:
        return f"{self.dataset(dataset)}/ds={self.ds}"

    @property
    def images(self) -> str:
        return self._under("images")

    @property
    def features(self) -> str:
        return self._under("features")

    @property
    def pca(self) -> str:
        return self._under("pca")

    @property
    def model(self) -> str:
        return self._under("model")

    def quarantine(self, stage: str) -> str:
        return f"{self._under('quarantine')}/stage={stage}"

    def report(self, stage: str) -> str:
        return f"{self._under('reports')}/{stage}.json"


@dataclass(frozen=True)
class PipelineOptions:
    """The run's knobs (Airflow params or local CLI options)."""

    weights: str = DEFAULT_WEIGHTS
    k: int | None = None
    variance: float = DEFAULT_VARIANCE


@dataclass(frozen=True)
class Stage:
    name: str
    script: str  # path under the repository's jobs/ folder
    arguments: Callable[[RunPaths, PipelineOptions], list[str]]

    def args(self, paths: RunPaths, options: PipelineOptions) -> list[str]:
        """The job's command-line arguments, report location included."""
        return [*self.arguments(paths, options), "--report", paths.report(self.name)]


def _load_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    return [
        "--input", paths.input,
        "--output", paths.images,
        "--quarantine", paths.quarantine("load"),
    ]  # fmt: skip


def _featurize_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    return [
        "--input", paths.images,
        "--output", paths.features,
        "--quarantine", paths.quarantine("featurize"),
        "--weights", options.weights,
        "--known-features", paths.dataset("features"),
        "--ds", paths.ds,
    ]  # fmt: skip


def _pca_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    choice = ["--k", str(options.k)] if options.k else ["--variance", str(options.variance)]
    # PCA sees the whole corpus: every date's features.
    return ["--input", paths.dataset("features"), "--output", paths.pca, *choice]


def _train_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    # The classifier learns from the whole corpus (every date's features) and fits its own PCA.
    return ["--input", paths.dataset("features"), "--output", paths.model]


STAGES: tuple[Stage, ...] = (
    Stage("load", "load.py", _load_args),
    Stage("featurize", "featurize.py", _featurize_args),
    Stage("pca", "pca.py", _pca_args),
    Stage("train", "train.py", _train_args),
)
