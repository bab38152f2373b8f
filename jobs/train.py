"""Entry point: `spark-submit jobs/train.py --help` (the stage is :mod:`fruits.train`)."""

from fruits.train import main

if __name__ == "__main__":
    main()
