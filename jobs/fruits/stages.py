"""The pipeline as data: one list of stages and the locations of one run.

The Airflow DAG turns each stage into an EMR step, the local runner into a local
``spark-submit``; both build the job arguments here, so the two paths cannot drift apart.
Every stage reads and writes under one output root, by logical date::

    <root>/images/ds=<date>/run=<id>/       load: the day's new/changed/deleted files (+ bytes)
    <root>/features/ds=<date>/run=<id>/     featurize: the day's rows of the corpus
    <root>/quarantine/ds=<date>/run=<id>/   featurize: files set aside that day, with reasons
    <root>/pca/ds=<date>/run=<id>/          pca: model/, vectors/, report.json, plot
    <root>/model/ds=<date>/run=<id>/        train: model/, reference/, report.json, plot
    <root>/<dataset>/ds=<date>/_current.json   which run is the date's current one
    <root>/reports/ds=<date>/<stage>.json   each stage's report
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fruits.config import DEFAULT_VARIANCE, DEFAULT_WEIGHTS, IMAGE_SIZE, RUN_RETENTION_HOURS

DATASETS = ("images", "features", "quarantine", "pca", "model")


@dataclass(frozen=True)
class RunPaths:
    """Where the run for logical date ``ds`` reads images (one root per source) and writes."""

    inputs: tuple[str, ...]
    root: str
    ds: str

    def dataset(self, name: str) -> str:
        """The root of a dataset, all dates (e.g. every ``features/ds=…`` partition)."""
        return f"{self.root.rstrip('/')}/{name}"

    def partition(self, name: str) -> str:
        """The dataset's partition of this date (its runs and ``_current.json`` live there)."""
        return f"{self.dataset(name)}/ds={self.ds}"

    def report(self, stage: str) -> str:
        return f"{self.dataset('reports')}/ds={self.ds}/{stage}.json"


@dataclass(frozen=True)
class PipelineOptions:
    """The run's knobs (Airflow params or local CLI options)."""

    weights: str = DEFAULT_WEIGHTS
    k: int | None = None
    variance: float = DEFAULT_VARIANCE
    full_rescan: bool = False
    views: bool = False  # featurize also computes augmented / test-time views (for train)
    input_size: int = IMAGE_SIZE  # side of the network's square input
    retention_hours: float = RUN_RETENTION_HOURS


@dataclass(frozen=True)
class Stage:
    name: str
    script: str  # path under the repository's jobs/ folder
    arguments: Callable[[RunPaths, PipelineOptions], list[str]]

    def args(self, paths: RunPaths, options: PipelineOptions) -> list[str]:
        """The job's command-line arguments: where it works, then its own options."""
        where = ["--root", paths.root, "--ds", paths.ds]
        kept = ["--retention-hours", str(options.retention_hours)]
        return [*where, *kept, *self.arguments(paths, options)]


def _load_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    inputs = [argument for root in paths.inputs for argument in ("--input", root)]
    return [*inputs, *(["--full-rescan"] if options.full_rescan else [])]


def _featurize_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    views = ["--views"] if options.views else []
    size = ["--input-size", str(options.input_size)] if options.input_size != IMAGE_SIZE else []
    return ["--weights", options.weights, *views, *size]


def _pca_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    # PCA sees the whole corpus: every date's current features.
    return ["--k", str(options.k)] if options.k else ["--variance", str(options.variance)]


def _train_args(paths: RunPaths, options: PipelineOptions) -> list[str]:
    # The classifier learns from the whole corpus and fits its own PCA.
    return []


STAGES: tuple[Stage, ...] = (
    Stage("load", "load.py", _load_args),
    Stage("featurize", "featurize.py", _featurize_args),
    Stage("pca", "pca.py", _pca_args),
    Stage("train", "train.py", _train_args),
)
