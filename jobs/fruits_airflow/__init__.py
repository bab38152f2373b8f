"""What the ``fruits_pipeline`` DAG needs that the Amazon provider lacks.

* :mod:`~fruits_airflow.execution` — which graph to build (EMR or local twin), parse-time knobs;
* :mod:`~fruits_airflow.run_params` — the DAG's Params, validated into a ``RunRequest``;
* :mod:`~fruits_airflow.deployment` — where a run lives: Airflow Variables (EMR), env vars (local);
* :mod:`~fruits_airflow.residency` — the EU guard (region and buckets);
* :mod:`~fruits_airflow.capacity`, :mod:`~fruits_airflow.instance_types`,
  :mod:`~fruits_airflow.run_cost` — where the driver goes, what fits on the cluster, the Spark
  memory settings, what it costs;
* :mod:`~fruits_airflow.cluster_python` — the cluster's virtualenv, pinned from constraints.txt;
* :mod:`~fruits_airflow.artifacts` — code packaging and content-addressed uploads to S3;
* :mod:`~fruits_airflow.emr_cluster`, :mod:`~fruits_airflow.emr_steps`,
  :mod:`~fruits_airflow.emr_plan` — the RunJobFlow request, one EMR step per stage of
  :data:`fruits.stages.STAGES`, and the two together with the capacity (``fruits-emr plan``:
  :mod:`~fruits_airflow.plan_cli`);
* :mod:`~fruits_airflow.emr_operators`, :mod:`~fruits_airflow.emr_logs` — the provider's operators
  and sensor made retry-safe, and why a step or a cluster failed, from EMR's logs;
* :mod:`~fruits_airflow.local_stages` — the local twin's stage runner;
* :mod:`~fruits_airflow.uris` — S3 URI helpers.

An installed package beside ``fruits`` (``pip install -e .``), imported by the DAG file.
"""
