"""The one way the jobs get a SparkSession: project defaults under whatever spark-submit set."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession
from pyspark.sql.pandas.functions import pandas_udf
from pyspark.sql.types import StructType

from fruits.config import SPARK_CONF

if TYPE_CHECKING:
    from pyspark.sql._typing import UserDefinedFunctionLike

#: ``pandas_udf(schema)`` as a decorator of a function whose type hints say the UDF's kind
#: (Series → DataFrame, Iterator[Series] → Iterator[DataFrame]) and that returns ``schema``'s
#: struct. The same function: pyspark's stubs only describe the ``functionType=`` form.
struct_pandas_udf = cast(
    "Callable[[StructType], Callable[[Callable[..., Any]], UserDefinedFunctionLike]]", pandas_udf
)


def get_spark(app_name: str) -> SparkSession:
    """Session with :data:`fruits.config.SPARK_CONF` as defaults (spark-submit/EMR settings win).

    Without a master (plain ``python jobs/load.py``) it runs on an embedded ``local[*]`` Spark,
    whose Python workers use this interpreter unless ``PYSPARK_PYTHON`` says otherwise.
    """
    # Attach to (or start) the JVM first: only a JVM-backed SparkConf sees what spark-submit set
    # (--master, --conf, spark-defaults.conf); a bare one would silently override them.
    SparkContext._ensure_initialized()
    conf = SparkConf()
    for key, value in SPARK_CONF.items():
        conf.setIfMissing(key, value)
    conf.setIfMissing("spark.master", "local[*]")
    # pyspark turns the console progress bar on for its shell: a job's log is no terminal.
    conf.set("spark.ui.showConsoleProgress", SPARK_CONF["spark.ui.showConsoleProgress"])
    if conf.get("spark.master", "local[*]").startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # One machine: a few shuffle partitions per core, not the cluster default of 200.
        cpus = os.cpu_count()
        if cpus is None:
            raise RuntimeError("cannot size spark.sql.shuffle.partitions: CPU count unknown")
        conf.setIfMissing("spark.sql.shuffle.partitions", str(4 * cpus))
    spark = SparkSession.builder.appName(app_name).config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("FRUITS_SPARK_LOG_LEVEL", "WARN"))
    # py4j logs every gateway connection at INFO/DEBUG once logging is configured (Airflow):
    # keep its warnings and errors only.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return spark
