"""What the ``fruits_pipeline`` DAG needs that the Amazon provider lacks.

* :mod:`~fruits_airflow.execution` — which graph to build (EMR or local twin), parse-time knobs;
* :mod:`~fruits_airflow.run_params` — the DAG's Params, validated into a ``RunRequest``;
* :mod:`~fruits_airflow.deployment` — where a run lives: Airflow Variables (EMR), env vars (local);
* :mod:`~fruits_airflow.residency` — the EU guard (region and buckets);
* :mod:`~fruits_airflow.artifacts` — code packaging and content-addressed uploads to S3;
* :mod:`~fruits_airflow.emr_cluster`, :mod:`~fruits_airflow.emr_steps` — the RunJobFlow request
  and one EMR step per stage of :data:`fruits.stages.STAGES`;
* :mod:`~fruits_airflow.local_stages` — the local twin's stage runner;
* :mod:`~fruits_airflow.uris` — S3 URI helpers.

An installed package beside ``fruits`` (``pip install -e .``), imported by the DAG file.
"""
