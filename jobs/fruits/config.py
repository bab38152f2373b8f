"""Defaults shared by the jobs, the local runner and the EMR cluster definition.

One place for every tunable, so local runs and EMR runs use the same values.
"""

from __future__ import annotations

# Image formats the pipeline decodes, recognised by content whatever the file's extension
# (Pillow format names); any other file is quarantined with the format it has.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
# Folder names that set a file's split (compared case-insensitively): alias → split.
SPLIT_ALIASES = {
    "training": "Training",
    "train": "Training",
    "test": "Test",
    "validation": "Validation",
    "val": "Validation",
}
# A source's optional mapping of its classes (read by the train stage, never loaded as data).
SOURCE_MAPPING_FILE = "fruit_map.csv"
# Files larger than this are quarantined unread (no phone photo comes near it).
MAX_FILE_BYTES = 100 * 1024 * 1024
# Larger images are quarantined before decoding (decompression-bomb guard): 50 megapixels.
MAX_IMAGE_PIXELS = 50_000_000

# Model input: the side of the square image the network sees. The ImageNet weights were trained
# at 224; the network is convolutional up to its global average pooling, so featurize can run
# the same weights on a larger input (--input-size, a multiple of 32): the fruit then spans more
# of the network's receptive fields (docs/classifier.md). The size is part of the model id.
IMAGE_SIZE = 224
# The EMR deployment's default (Variable fruits_input_size): the most accurate size measured on
# both shared sources; local runs keep IMAGE_SIZE (3.5 times less featurize work).
PRODUCTION_INPUT_SIZE = 416
MIN_INPUT_SIZE, MAX_INPUT_SIZE, INPUT_SIZE_STEP = 96, 640, 32
# Large JPEGs are decoded at reduced scale (libjpeg's 1/2, 1/4, 1/8 DCT scaling) to no less than
# this many times the input size a side, then resized to it: a 12 MP photo decodes several
# times faster into ~0.6 MB instead of 36 MB, its features within cosine 0.999 of a full decode
# (tests/service/test_decoding.py). The pipeline and the service decode alike.
DECODE_DRAFT_FACTOR = 2
DECODE_DRAFT_SIZE = DECODE_DRAFT_FACTOR * IMAGE_SIZE
FEATURE_DIM = 1280
# `imagenet` = Keras' own download into KERAS_HOME; otherwise a local path or an s3:// URI.
DEFAULT_WEIGHTS = "imagenet"

# Inference batch inside one Arrow batch, and rows per Arrow batch sent to Python workers.
# 16 is as fast per image as 64 on one CPU thread (15.6 vs 17.1 ms) and keeps a worker's peak
# memory ~0.7 GB lower (activations of 224x224 images): measured by bench/benchmark.py.
INFERENCE_BATCH_SIZE = 16
ARROW_BATCH_ROWS = 256
# Featurize sizes its Arrow batches by bytes too: at most this much encoded image data per batch
# (rows = this / the mean file size, capped at ARROW_BATCH_ROWS), so 5 MB phone photos do not
# put 256 x 5 MB into a Python worker at once.
ARROW_BATCH_MAX_BYTES = 64 * 1024 * 1024
# Measured peak resident memory of one featurize Python worker with MobileNetV2 built
# (bench/benchmark.py, 100x100 JPEGs, inference batch 16); the Arrow batch comes on top.
PYTHON_WORKER_PEAK_BYTES = 1_300 * 1024 * 1024
# A larger network input adds activations: measured peaks of one process running batches of 16
# (2026-12-03): 940 MB at 224, 1,229 at 320, 1,595 at 416, 2,031 at 512 — 270 MB more per
# (size / 224)² above 1, within 40 MB at every size.
PYTHON_WORKER_BYTES_PER_INPUT_AREA = 270 * 1024 * 1024
# Images per featurize task (at least two tasks per core are made, for balance).
ROWS_PER_TASK = 1024

# PCA: smallest k whose cumulative explained variance reaches this, unless k is given.
DEFAULT_VARIANCE = 0.95

# Spark settings applied to every run, local or EMR.
SPARK_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
    "spark.sql.parquet.compression.codec": "snappy",
    "spark.python.worker.reuse": "true",
    "spark.ui.showConsoleProgress": "false",  # featurize reports its own progress
    # Let adaptive execution coalesce the shuffles of cached plans too (small daily increments).
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
}
# How long a superseded or abandoned run folder is kept after the flip (readers that resolved
# the previous pointer can finish), before the next publication deletes it.
RUN_RETENTION_HOURS = 24.0

# Classifier (train stage): fitted on TRAIN_SPLIT, evaluated on EVAL_SPLIT.
TRAIN_SPLIT = "Training"
EVAL_SPLIT = "Test"
# Every held-out split is evaluated, per source and level (report["domains"]).
EVAL_SPLITS = ("Test", "Validation")
# "lr" (multinomial logistic regression) or "mlp"; k PCA components after standard scaling.
CLASSIFIER = "lr"
CLASSIFIER_K = 256
CLASSIFIER_SCALE = True
CLASSIFIER_REG_PARAM = 0.001
CLASSIFIER_MAX_ITER = 200
CLASSIFIER_HIDDEN = (256,)
CLASSIFIER_SEED = 42
# Up to this many training values (images × 1280 features: ~40,000 images, 400 MB as float64)
# the LR pipeline is fitted on the driver with numpy: Spark's objective, Spark's stopping rule
# (loss improving by less than DRIVER_FIT_TOL, relative, over 10 iterations) and default
# tolerance; larger sets are fitted by Spark. Same model either way.
DRIVER_FIT_MAX_CELLS = 50_000_000
DRIVER_FIT_MAX_ITER = 2000
DRIVER_FIT_TOL = 1e-6
# The classifier's probabilities are calibrated (one temperature, fruits.calibration) on at
# most CALIBRATION_MAX_ROWS rows of this split's images, when it has any.
CALIBRATION_SPLIT = "Validation"
CALIBRATION_MAX_ROWS = 20_000
# Prediction: below this (calibrated) fruit probability the answer is "unknown"; a variety of
# the answered fruit is named when its own probability reaches VARIETY_THRESHOLD. Chosen on the
# grocery photos' Validation split: packages and vegetables are refused by the "not a fruit"
# classes, not by this threshold (98.9 % refused from 0.25 to 0.45 with the 224 views model and
# the 416 model alike), so it only trades catalogue photos answered against their accuracy:
# 0.3 answers 95.0 % of them with the 416 model (0.4: 88.2 %), 96.6 % with the views model
# (0.4: 93.3 %); docs/classifier.md.
PREDICT_THRESHOLD = 0.3
VARIETY_THRESHOLD = 0.5
# Test-time views of a photo whose class probabilities are averaged
# (fruits.augmentation.test_views: the image, its mirror, centre and corner crops); 1: the image.
TEST_VIEWS = 7
# With featurize's --views: augmented views computed per training image besides the image
# itself (fruits.augmentation.decode_training_views); held-out images get TEST_VIEWS - 1 more.
TRAINING_VIEWS = 4
# Below this cosine similarity to the nearest training image (MobileNetV2 features) a photo is
# "unknown", however confident the classifier; the train stage keeps up to REFERENCE_PER_CLASS
# training images per class as the reference set. Noise, plain colours, drawings and portraits
# score 0.28-0.62; real grocery photos of catalogue fruits: 1st percentile 0.64 (0.70 refused
# 10 % of them).
MIN_SIMILARITY = 0.63
REFERENCE_PER_CLASS = 100
