"""The test report of a saved model on MNIST or its own dataset: accuracy, precision, recall, confusions.

``python -m scratchcnn.evaluate MODEL``: the command lives in :mod:`scratchcnn.training.evaluate`.
"""

import sys

from scratchcnn.training.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
