"""``python -m scratchcnn.score``: the command lives in :mod:`scratchcnn.reader.score`."""

import sys

from scratchcnn.reader.score import main

if __name__ == "__main__":
    sys.exit(main())
