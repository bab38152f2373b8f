"""Entry point: `spark-submit jobs/load.py --help` (the stage is :mod:`fruits.load`)."""

from fruits.load import main

if __name__ == "__main__":
    main()
