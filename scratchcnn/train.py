"""Train a CNN on MNIST, keep the best model, never lose a run.

``python -m scratchcnn.train``: the command lives in :mod:`scratchcnn.training.train`.
"""

import sys

from scratchcnn.training.train import main

if __name__ == "__main__":
    sys.exit(main())
