"""Fruits! image pipeline: Spark jobs that turn fruit photos into a fruit classifier.

Stages (each a ``spark-submit`` entry point under ``jobs/``, listed once in
:data:`fruits.stages.STAGES`): :mod:`fruits.load`, :mod:`fruits.featurize`, :mod:`fruits.pca`,
:mod:`fruits.train`. Their outputs are published by :mod:`fruits.catalog` and read as the
corpus of :mod:`fruits.corpus`; :mod:`fruits.predict` answers for one photo.
"""

__version__ = "0.1.0"
