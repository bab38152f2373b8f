"""Fruits! image pipeline: Spark jobs that turn fruit photos into compact feature vectors.

Stages (each a ``spark-submit`` entry point under ``jobs/``):

* :mod:`fruits.load` — list and validate images, quarantine the bad ones.
* :mod:`fruits.featurize` — MobileNetV2 (ImageNet) features, weights broadcast to executors.
* :mod:`fruits.pca` — ``pyspark.ml`` PCA, k from explained variance or given.
"""

__version__ = "0.1.0"
