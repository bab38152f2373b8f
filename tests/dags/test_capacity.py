"""The capacity model: where the driver goes, how many executors fit, what a worker may use.

Pure Python: EMR's YARN memory per instance type, Spark's container accounting, the measured
Python worker peak and featurize's Arrow byte bound (fruits.config).
"""

from __future__ import annotations

import pytest

from fruits.config import ARROW_BATCH_MAX_BYTES, PYTHON_WORKER_PEAK_BYTES
from fruits_airflow import capacity, run_cost
from fruits_airflow.capacity import (
    MIB,
    ClusterShape,
    DeployMode,
    SparkSizing,
    Workload,
    jvm_overhead_mb,
)
from fruits_airflow.instance_types import INSTANCE_TYPES, UnknownInstanceType

CLIENT, CLUSTER = DeployMode.CLIENT, DeployMode.CLUSTER
# What the cluster ran with before the model: 4-core executors of 2g + 6144m, a cluster-mode
# driver of 2g + 3072m, written by hand.
HAND_WRITTEN = SparkSizing(CLUSTER, 4, 2048, 6144, driver_heap_mb=2048, driver_overhead_mb=3072)


def shape(core_type: str = "m5.xlarge", cores: int = 2, mode=CLIENT, **kwargs) -> ClusterShape:
    return ClusterShape("m5.xlarge", core_type, cores, deploy_mode=mode, **kwargs)


def fits_yarn(plan: capacity.Capacity) -> None:
    """What YARN would do with the plan's containers, node by node (memory only, as EMR's
    scheduler): the planned executors fit, one more does not, and every slot has a vCPU."""
    node = INSTANCE_TYPES[plan.shape.core_type]
    sizing = plan.sizing
    per_node = plan.executors // plan.shape.workers
    assert per_node * sizing.executor_container_mb + sizing.reserved_mb <= node.yarn_mb
    assert (per_node + 1) * sizing.executor_container_mb > node.yarn_mb
    assert per_node * sizing.executor_cores <= node.vcpus
    assert sizing.executor_container_mb % 32 == 0  # YARN grants what is asked


@pytest.mark.parametrize("mode", [CLIENT, CLUSTER])
@pytest.mark.parametrize("nodes", [1, 2, 4])
def test_m5_xlarge_runs_one_four_core_executor_per_core_node_in_either_mode(mode, nodes):
    plan = capacity.plan(shape("m5.xlarge", nodes, mode))
    assert plan.problems == ()
    assert (plan.executors, plan.task_slots) == (nodes, 4 * nodes)
    fits_yarn(plan)
    sizing = plan.sizing
    assert sizing.python_mb_per_core >= Workload().worker_mb
    assert sizing.executor_heap_mb >= capacity.MIN_EXECUTOR_HEAP_MB
    assert sizing.max_executors == nodes


def test_client_mode_keeps_only_the_application_master_on_a_core_node():
    """The driver is the step on the primary node: YARN keeps 896 MB (512m + 384m) for the
    ExecutorLauncher; cluster mode keeps the driver's container, TensorFlow included."""
    client = capacity.plan(shape(mode=CLIENT)).sizing
    cluster = capacity.plan(shape(mode=CLUSTER)).sizing
    assert client.reserved_mb == 896
    peak_mb = PYTHON_WORKER_PEAK_BYTES // MIB
    assert cluster.reserved_mb >= 2048 + jvm_overhead_mb(2048) + peak_mb
    assert client.executor_heap_mb > cluster.executor_heap_mb  # the room is the executor's
    assert "spark.yarn.am.memory" in client.conf()
    assert "spark.driver.memoryOverhead" in cluster.conf()


def test_the_hand_written_sizing_starts_no_executor_on_one_node_and_one_on_two():
    """Issue #11: a 5,120 MB driver beside an 8,192 MB executor on 12,288 MB of YARN."""
    one = capacity.plan(shape(cores=1, mode=CLUSTER), sizing=HAND_WRITTEN)
    assert one.executors == 0
    assert any("no executor can start" in problem for problem in one.problems)
    two = capacity.plan(shape(cores=2, mode=CLUSTER), sizing=HAND_WRITTEN)
    assert (two.executors, two.problems) == (1, ())


def test_m5_2xlarge_runs_two_executors_per_node():
    plan = capacity.plan(shape("m5.2xlarge", 2))
    assert (plan.executors, plan.task_slots, plan.sizing.executor_cores) == (4, 16, 4)
    fits_yarn(plan)


def test_r5_xlarge_gives_its_extra_memory_to_the_heap_not_to_more_slots():
    m5, r5 = capacity.plan(shape("m5.xlarge", 2)), capacity.plan(shape("r5.xlarge", 2))
    assert r5.task_slots == m5.task_slots == 8  # 4 vCPUs each: no more task slots
    assert r5.sizing.executor_heap_mb > 3 * m5.sizing.executor_heap_mb
    fits_yarn(r5)


def test_memory_poor_nodes_run_fewer_task_slots_than_vcpus():
    c5 = capacity.plan(shape("c5.2xlarge", 2))  # 8 vCPUs, 12,288 MB: not 8 workers of 1.4 GB
    assert c5.problems == ()
    assert c5.task_slots < 2 * INSTANCE_TYPES["c5.2xlarge"].vcpus
    fits_yarn(c5)


def test_where_no_executor_fits_beside_the_driver_the_run_is_refused():
    plan = capacity.plan(shape("c5.xlarge", 4, CLUSTER))
    assert (plan.sizing, plan.executors) == (None, 0)
    (problem,) = plan.problems
    assert "no executor can start: a c5.xlarge node gives YARN 6144 MB" in problem
    assert "driver (cluster mode) takes" in problem


def test_phone_photos_fit_because_arrow_batches_are_bounded_by_bytes():
    """256 phone photos of 4 MB in one Arrow batch would put 1 GB in a worker (twice, Arrow
    and pandas); the byte bound sends 16 of them at a time."""
    photos = Workload(mean_image_bytes=4 * MIB)
    assert photos.batch_rows == ARROW_BATCH_MAX_BYTES // (4 * MIB) == 16
    sizing = capacity.plan(shape()).sizing  # sized for any batch up to the byte bound
    assert capacity.plan(shape(), photos, sizing).problems == ()

    rows_only = Workload(mean_image_bytes=4 * MIB, arrow_batch_max_bytes=None)
    assert rows_only.batch_rows == 256
    (problem,) = capacity.plan(shape(), rows_only, sizing).problems
    assert "a featurize Python worker needs 3348 MB" in problem
    assert "Arrow batch of 256 rows" in problem
    assert "gets 1428 MB" in problem


def test_an_image_above_the_byte_bound_travels_alone():
    huge = Workload(mean_image_bytes=ARROW_BATCH_MAX_BYTES * 3)
    assert (huge.batch_rows, huge.batch_bytes) == (1, ARROW_BATCH_MAX_BYTES * 3)
    assert capacity.plan(shape(), huge, capacity.plan(shape()).sizing).problems
    assert capacity.plan(shape(), huge).problems == ()  # sized for it: fewer slots per node


def test_a_client_mode_driver_too_big_for_the_primary_is_refused():
    big_driver = SparkSizing(CLIENT, 4, 5163, 6229, driver_heap_mb=16 * 1024)
    (problem,) = capacity.plan(shape(), sizing=big_driver).problems
    assert "the driver (client mode, on the primary node) needs" in problem


def test_task_nodes_add_executors_and_the_hourly_price():
    base = capacity.plan(shape(cores=2))
    wider = capacity.plan(shape(cores=2, task_count=3))
    assert wider.executors == base.executors + 3
    node = INSTANCE_TYPES["m5.xlarge"].usd_per_hour
    assert wider.usd_per_hour == pytest.approx(base.usd_per_hour + 3 * node)
    assert base.usd_per_hour == pytest.approx(3 * (0.224 + 0.048))


def test_an_unknown_instance_type_is_refused_with_the_supported_list():
    with pytest.raises(UnknownInstanceType, match=r"'m5\.large' is not in the capacity model"):
        capacity.plan(shape("m5.large"))


def test_the_summary_says_where_the_driver_runs_and_what_each_worker_gets():
    text = capacity.summary(capacity.plan(shape(cores=2, task_count=1)))
    assert "deploy mode client" in text
    assert "on the primary node (spark-submit)" in text
    assert "executors  3 (12 task slots on 12 core/task vCPUs)" in text
    assert "task       1 x m5.xlarge, Spot" in text
    assert "USD/h" in text and "PROBLEM" not in text


def test_a_run_costs_its_start_and_fixed_step_time_plus_its_images():
    plan = capacity.plan(shape(cores=2))
    small, large = run_cost.estimate(plan, 1_000), run_cost.estimate(plan, 1_000_000)
    assert small.cluster_s == pytest.approx(
        run_cost.CLUSTER_START_S + sum(run_cost.STAGE_FIXED_S.values()) + 1_000 * 0.07 / 8
    )
    assert large.usd == pytest.approx(large.hours * plan.usd_per_hour)
    assert large.usd > small.usd
    at_416 = run_cost.estimate(plan, 1_000_000, input_size=416)
    extra_per_image = 0.038 * ((416 / 224) ** 2 - 1)  # featurize's share grows with the area
    assert at_416.cluster_s - large.cluster_s == pytest.approx(1_000_000 * extra_per_image / 8)


def test_a_larger_network_input_gets_workers_with_room_for_its_activations():
    """Measured peaks grow with the input's area: 270 MB more per (size / 224)² above 1."""
    at_224, at_416 = Workload(), Workload(input_size=416)
    assert at_416.peak_mb - at_224.peak_mb == pytest.approx(270 * ((416 / 224) ** 2 - 1), abs=1)
    sized_for_224 = capacity.plan(shape()).sizing
    (problem,) = capacity.plan(shape(), at_416, sized_for_224).problems
    assert "a featurize Python worker needs" in problem
    plan = capacity.plan(shape(), at_416)  # sized for it: fewer, larger worker slots
    assert plan.problems == () and plan.sizing.python_mb_per_core >= at_416.worker_mb
    fits_yarn(plan)
