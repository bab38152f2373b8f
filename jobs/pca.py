"""Entry point: `spark-submit jobs/pca.py --help` (the stage is :mod:`fruits.pca`)."""

from fruits.pca import main

if __name__ == "__main__":
    main()
