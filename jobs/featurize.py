"""Entry point: `spark-submit jobs/featurize.py --help` (the stage is :mod:`fruits.featurize`)."""

from fruits.featurize import main

if __name__ == "__main__":
    main()
