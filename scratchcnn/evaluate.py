"""The MNIST test report of a saved model: accuracy, precision, recall, confusions.

``python -m scratchcnn.evaluate MODEL``: the command lives in :mod:`scratchcnn.training.evaluate`.
"""

import sys

from scratchcnn.training.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
