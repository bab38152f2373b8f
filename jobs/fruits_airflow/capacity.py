"""Where a run's Spark driver goes and how many executors fit on its EMR cluster, before any AWS
call — and the Spark memory settings of every step (this module is the only place they are set).

Inputs: the instance types (YARN memory and vCPUs, :mod:`fruits_airflow.instance_types`), the core
and task node counts, the deploy mode, and the featurize workload (the measured peak of a Python
worker plus its Arrow batch, :mod:`fruits.config`). YARN's accounting on EMR 7 (Spark 3.5):

* a container is requested as heap + ``memoryOverhead``, rounded up to
  ``yarn.scheduler.minimum-allocation-mb`` (32 MB on EMR);
* the overhead holds the JVM's own off-heap memory (Spark's default: max(384 MB, 10 % of the
  heap)) and, with ``spark.executor.pyspark.memory`` unset, the Python workers: one per task slot,
  each with MobileNetV2 built and one Arrow batch of images;
* client mode: the driver is the step's ``spark-submit`` on the primary node (no NodeManager
  there, so no YARN memory) and YARN runs a small application master (``ExecutorLauncher``,
  512 MB + 384 MB) on a core node; cluster mode: the driver *is* the application master, a YARN
  container on a core node, with TensorFlow loaded (featurize builds the network there);
* EMR's capacity scheduler counts memory only, not vCPUs. The model plans at most one task slot
  per vCPU and sizes the executors to fill each node's YARN memory (after the room the
  application master or driver needs), so that YARN cannot pack one executor more than planned.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from fruits.config import (
    ARROW_BATCH_MAX_BYTES,
    ARROW_BATCH_ROWS,
    IMAGE_SIZE,
    PYTHON_WORKER_BYTES_PER_INPUT_AREA,
    PYTHON_WORKER_PEAK_BYTES,
)
from fruits.model import input_area
from fruits_airflow.instance_types import PRICE_REGION, PRICES_RECORDED, instance_type

MIB = 1024 * 1024
YARN_ALLOCATION_MB = 32  # EMR's yarn.scheduler.minimum-allocation-mb
SPARK_MIN_OVERHEAD_MB = 384  # Spark's floor for the JVM's off-heap memory
SPARK_OVERHEAD_FACTOR = 0.10  # … else 10 % of the heap
AM_HEAP_MB = 512  # spark.yarn.am.memory (client mode's application master)
# The train step collects the reduced features to the driver (Arrow) and fits there: 2 GB of
# heap was too tight once the grocery photos and test views were added. Client mode (the
# default) runs the driver on the primary node, outside YARN, where 4 GB costs no executor;
# cluster mode keeps 2 GB so that its container leaves a core node room for an executor.
DRIVER_HEAP_MB = 4096
CLUSTER_DRIVER_HEAP_MB = 2048
MIN_EXECUTOR_HEAP_MB = 2048  # Arrow exchange, Parquet writes, PCA's covariance aggregation
MAX_EXECUTOR_CORES = 4  # one Python worker per core; more per JVM only lengthens GC pauses
# The Arrow batch is in a worker twice while it is decoded: Arrow buffers and pandas' bytes.
ARROW_COPIES = 2


class DeployMode(enum.StrEnum):
    CLIENT = "client"
    CLUSTER = "cluster"


def _round_up(mb: int) -> int:
    """A container request as YARN grants it (a multiple of the minimum allocation)."""
    return -(-mb // YARN_ALLOCATION_MB) * YARN_ALLOCATION_MB


def _round_down(mb: int) -> int:
    return mb // YARN_ALLOCATION_MB * YARN_ALLOCATION_MB


def jvm_overhead_mb(heap_mb: int) -> int:
    """Spark's default memory overhead of a JVM with ``heap_mb`` of heap."""
    return max(SPARK_MIN_OVERHEAD_MB, math.ceil(SPARK_OVERHEAD_FACTOR * heap_mb))


@dataclass(frozen=True)
class Workload:
    """What one featurize Python worker holds at its peak: the network and one Arrow batch.

    ``mean_image_bytes`` None: sizes unknown, the batch is at its byte bound.
    ``arrow_batch_max_bytes`` None: batches bounded by rows only (before the byte bound).
    ``input_size``: the network's input side; larger inputs hold larger activations.
    """

    mean_image_bytes: int | None = None
    arrow_batch_max_bytes: int | None = ARROW_BATCH_MAX_BYTES
    arrow_batch_rows: int = ARROW_BATCH_ROWS
    worker_peak_bytes: int = PYTHON_WORKER_PEAK_BYTES
    input_size: int = IMAGE_SIZE

    def __post_init__(self) -> None:
        if self.mean_image_bytes is None and self.arrow_batch_max_bytes is None:
            raise ValueError("without a byte bound on Arrow batches, give the mean image size")

    @property
    def batch_rows(self) -> int | None:
        """Rows per Arrow batch: the byte bound over the mean size, at most the row cap, at
        least one (a single image larger than the bound goes alone). None: sizes unknown."""
        if self.mean_image_bytes is None:
            return None
        if self.arrow_batch_max_bytes is None:
            return self.arrow_batch_rows
        fitting = self.arrow_batch_max_bytes // max(1, self.mean_image_bytes)
        return max(1, min(self.arrow_batch_rows, fitting))

    @property
    def batch_bytes(self) -> int:
        if self.batch_rows is None:
            assert self.arrow_batch_max_bytes is not None
            return self.arrow_batch_max_bytes
        return self.batch_rows * (self.mean_image_bytes or 0)

    @property
    def network_peak_bytes(self) -> int:
        """The measured peak at 224, plus the activations of a larger input."""
        area = input_area(self.input_size)
        return self.worker_peak_bytes + round(PYTHON_WORKER_BYTES_PER_INPUT_AREA * (area - 1))

    @property
    def worker_mb(self) -> int:
        """Memory one Python worker needs: the network's peak + the Arrow batch (twice)."""
        return math.ceil((self.network_peak_bytes + ARROW_COPIES * self.batch_bytes) / MIB)

    @property
    def peak_mb(self) -> int:
        return math.ceil(self.network_peak_bytes / MIB)


@dataclass(frozen=True)
class ClusterShape:
    """A run's cluster: one primary node, on-demand core nodes, task nodes (the core type)."""

    primary_type: str
    core_type: str
    core_count: int
    task_count: int = 0
    task_spot: bool = True
    deploy_mode: DeployMode = DeployMode.CLIENT

    @property
    def workers(self) -> int:
        """Nodes running YARN containers (core and task)."""
        return self.core_count + self.task_count


@dataclass(frozen=True)
class SparkSizing:
    """The memory settings of every step's ``spark-submit``."""

    deploy_mode: DeployMode
    executor_cores: int
    executor_heap_mb: int
    executor_overhead_mb: int
    driver_heap_mb: int = DRIVER_HEAP_MB
    driver_overhead_mb: int = SPARK_MIN_OVERHEAD_MB
    max_executors: int | None = None

    @property
    def executor_container_mb(self) -> int:
        return _round_up(self.executor_heap_mb + self.executor_overhead_mb)

    @property
    def python_mb_per_core(self) -> int:
        """Overhead left to each task slot's Python worker once the JVM has its share."""
        jvm = jvm_overhead_mb(self.executor_heap_mb)
        return (self.executor_overhead_mb - jvm) // self.executor_cores

    @property
    def reserved_mb(self) -> int:
        """YARN memory of the application master (client) or the driver (cluster)."""
        if self.deploy_mode is DeployMode.CLIENT:
            return _round_up(AM_HEAP_MB + jvm_overhead_mb(AM_HEAP_MB))
        return _round_up(self.driver_heap_mb + self.driver_overhead_mb)

    def conf(self) -> dict[str, str]:
        """``--conf`` pairs for ``spark-submit``."""
        conf = {
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": f"{self.executor_heap_mb}m",
            "spark.executor.memoryOverhead": f"{self.executor_overhead_mb}m",
            "spark.driver.memory": f"{self.driver_heap_mb}m",
        }
        if self.deploy_mode is DeployMode.CLIENT:
            conf["spark.yarn.am.memory"] = f"{AM_HEAP_MB}m"
            conf["spark.yarn.am.memoryOverhead"] = f"{jvm_overhead_mb(AM_HEAP_MB)}m"
        else:
            conf["spark.driver.memoryOverhead"] = f"{self.driver_overhead_mb}m"
        if self.max_executors is not None:
            conf["spark.dynamicAllocation.maxExecutors"] = str(self.max_executors)
        return conf


def driver_sizing(deploy_mode: DeployMode, workload: Workload) -> tuple[int, int]:
    """(heap, overhead) of the driver. Its Python process imports TensorFlow and builds the
    network once (featurize broadcasts the weights): the worker's peak, without Arrow batches."""
    heap = DRIVER_HEAP_MB if deploy_mode is DeployMode.CLIENT else CLUSTER_DRIVER_HEAP_MB
    return heap, jvm_overhead_mb(heap) + workload.peak_mb


def _executor_heap_mb(container_mb: int, cores: int, worker_mb: int) -> int:
    """The largest heap that leaves, in ``container_mb``, the JVM's overhead and one Python
    worker per core."""
    room = container_mb - cores * worker_mb
    heap = room - SPARK_MIN_OVERHEAD_MB
    if heap > SPARK_MIN_OVERHEAD_MB / SPARK_OVERHEAD_FACTOR:
        heap = math.floor(room / (1 + SPARK_OVERHEAD_FACTOR))
        while heap + jvm_overhead_mb(heap) > room:
            heap -= 1
    return heap


def size_executors(shape: ClusterShape, workload: Workload = Workload()) -> SparkSizing | None:
    """Executors that fill each core/task node: the most task slots (≤ vCPUs), then the fewest
    JVMs, each with ≥ :data:`MIN_EXECUTOR_HEAP_MB` of heap and a worker's memory per core.
    None when not even a one-core executor fits beside the application master or driver."""
    node = instance_type(shape.core_type)
    driver = driver_sizing(shape.deploy_mode, workload)
    free = node.yarn_mb - SparkSizing(shape.deploy_mode, 1, 0, 0, *driver).reserved_mb
    best: tuple[tuple[int, int], int, int, int] | None = None
    for cores in range(min(MAX_EXECUTOR_CORES, node.vcpus), 0, -1):
        for per_node in range(node.vcpus // cores, 0, -1):
            container = _round_down(free // per_node)
            if (per_node + 1) * container <= node.yarn_mb:
                continue  # a node without the driver would take one executor more
            heap = _executor_heap_mb(container, cores, workload.worker_mb)
            rank = (cores * per_node, cores)
            if heap >= MIN_EXECUTOR_HEAP_MB and (best is None or rank > best[0]):
                best = (rank, cores, heap, container)
    if best is None:
        return None
    _, cores, heap, container = best
    sizing = SparkSizing(shape.deploy_mode, cores, heap, container - heap, *driver)
    return replace(sizing, max_executors=executors_on(shape, sizing))


def executors_on(shape: ClusterShape, sizing: SparkSizing) -> int:
    """Executors YARN can start: one node also holds the application master or driver."""
    node = instance_type(shape.core_type)
    per_node = node.yarn_mb // sizing.executor_container_mb
    beside_driver = max(0, node.yarn_mb - sizing.reserved_mb) // sizing.executor_container_mb
    return beside_driver + (shape.workers - 1) * per_node if shape.workers else 0


@dataclass(frozen=True)
class Capacity:
    """A cluster shape with its sizing: what runs where, what it costs, what is wrong."""

    shape: ClusterShape
    workload: Workload
    sizing: SparkSizing | None
    executors: int
    problems: tuple[str, ...]

    @property
    def task_slots(self) -> int:
        return self.executors * self.sizing.executor_cores if self.sizing else 0

    @property
    def usd_per_hour(self) -> float:
        """Every node at the On-Demand price plus the EMR fee (Spot task nodes cost less)."""
        primary = instance_type(self.shape.primary_type).usd_per_hour
        return primary + self.shape.workers * instance_type(self.shape.core_type).usd_per_hour


def worker_problem(sizing: SparkSizing, workload: Workload) -> str | None:
    """Why a featurize Python worker would outgrow the memory YARN grants it, if it would."""
    granted, needed = sizing.python_mb_per_core, workload.worker_mb
    if needed <= granted:
        return None
    rows = workload.batch_rows
    batch = f"{rows} rows" if rows is not None else "its byte bound"
    return (
        f"a featurize Python worker needs {needed} MB (measured peak {workload.peak_mb} MB + "
        f"{ARROW_COPIES} x {workload.batch_bytes / MIB:.0f} MB Arrow batch of {batch}) but each "
        f"of the executor's {sizing.executor_cores} task slots gets {granted} MB of "
        "spark.executor.memoryOverhead beyond the JVM's own: YARN would kill the executors "
        "mid-featurize. Use a memory-richer core type (r5) or smaller Arrow batches "
        "(fruits.config.ARROW_BATCH_MAX_BYTES)"
    )


def driver_problem(shape: ClusterShape, sizing: SparkSizing, workload: Workload) -> str | None:
    """Client mode: why the driver would not fit in the primary node's memory, if it would not."""
    if shape.deploy_mode is not DeployMode.CLIENT:
        return None
    primary = instance_type(shape.primary_type)
    needed = sizing.driver_heap_mb + jvm_overhead_mb(sizing.driver_heap_mb) + workload.peak_mb
    if needed <= primary.yarn_mb:
        return None
    return (
        f"the driver (client mode, on the primary node) needs {needed} MB but a "
        f"{primary.name} leaves {primary.yarn_mb} MB beside EMR's daemons: use a larger "
        "fruits_emr_master_instance_type"
    )


def plan(
    shape: ClusterShape, workload: Workload = Workload(), sizing: SparkSizing | None = None
) -> Capacity:
    """The capacity of ``shape``, with the model's sizing unless ``sizing`` is given.

    Raises :class:`~fruits_airflow.instance_types.UnknownInstanceType` for a type it cannot size.
    """
    instance_type(shape.primary_type)
    node = instance_type(shape.core_type)
    sizing = sizing or size_executors(shape, workload)
    problems: list[str] = []
    if sizing is None:
        driver = driver_sizing(shape.deploy_mode, workload)
        reserve = SparkSizing(shape.deploy_mode, 1, 0, 0, *driver)
        smallest = MIN_EXECUTOR_HEAP_MB + SPARK_MIN_OVERHEAD_MB + workload.worker_mb
        problems.append(
            f"no executor can start: a {node.name} node gives YARN {node.yarn_mb} MB, the "
            f"{_driver_role(shape.deploy_mode)} takes {reserve.reserved_mb} MB and the smallest "
            f"executor (1 core) needs {smallest} MB. Use a larger core instance type"
        )
        return Capacity(shape, workload, None, 0, tuple(problems))
    executors = executors_on(shape, sizing)
    if executors == 0:
        problems.append(
            f"no executor can start: {shape.workers} {node.name} node(s) with {node.yarn_mb} MB "
            f"of YARN memory each; the {_driver_role(shape.deploy_mode)} takes "
            f"{sizing.reserved_mb} MB of one and an executor needs "
            f"{sizing.executor_container_mb} MB. Add core nodes or size the executors down"
        )
    problems += filter(
        None, (worker_problem(sizing, workload), driver_problem(shape, sizing, workload))
    )
    return Capacity(shape, workload, sizing, executors, tuple(problems))


def _driver_role(mode: DeployMode) -> str:
    return "application master" if mode is DeployMode.CLIENT else "driver (cluster mode)"


def summary(capacity: Capacity) -> str:
    """The capacity as an operator reads it (validate_params' log, ``fruits-emr plan``)."""
    shape, sizing, workload = capacity.shape, capacity.sizing, capacity.workload
    primary, node = instance_type(shape.primary_type), instance_type(shape.core_type)
    market = "Spot" if shape.task_spot else "on demand"
    lines = [
        f"Capacity (deploy mode {shape.deploy_mode}):",
        f"  primary    1 x {primary.name}, on demand",
        f"  core       {shape.core_count} x {node.name}, on demand "
        f"(YARN {node.yarn_mb} MB, {node.vcpus} vCPU each)",
        f"  task       {shape.task_count} x {node.name}, {market}"
        if shape.task_count
        else "  task       none",
    ]
    if sizing is not None:
        python = sizing.executor_overhead_mb - jvm_overhead_mb(sizing.executor_heap_mb)
        if shape.deploy_mode is DeployMode.CLIENT:
            driver = (
                f"on the primary node (spark-submit): {sizing.driver_heap_mb} MB heap; "
                f"application master {sizing.reserved_mb} MB on one core node"
            )
        else:
            driver = (
                f"a {sizing.reserved_mb} MB YARN container on one core node "
                f"({sizing.driver_heap_mb} MB heap + {sizing.driver_overhead_mb} MB overhead)"
            )
        rows = workload.batch_rows
        lines += [
            f"  driver     {driver}",
            f"  executor   {sizing.executor_cores} cores, {sizing.executor_container_mb} MB = "
            f"{sizing.executor_heap_mb} MB heap + {sizing.executor_overhead_mb} MB overhead "
            f"({jvm_overhead_mb(sizing.executor_heap_mb)} MB JVM + {python} MB for "
            f"{sizing.executor_cores} Python workers)",
            f"  executors  {capacity.executors} ({capacity.task_slots} task slots on "
            f"{shape.workers * node.vcpus} core/task vCPUs)",
            f"  worker     needs {workload.worker_mb} MB (peak {workload.peak_mb} MB + "
            f"{ARROW_COPIES} x {workload.batch_bytes / MIB:.0f} MB Arrow batch"
            + (f" of {rows} rows" if rows is not None else "")
            + f"), gets {sizing.python_mb_per_core} MB",
        ]
    lines.append(
        f"  cost       {capacity.usd_per_hour:.3f} USD/h with every node on demand "
        f"({PRICE_REGION} EC2 + EMR prices recorded {PRICES_RECORDED}; Spot task nodes cost less)"
    )
    lines += [f"  PROBLEM    {problem}" for problem in capacity.problems]
    return "\n".join(lines)
