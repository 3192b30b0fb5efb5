"""``python -m scratchcnn.synthetic``: the command lives in :mod:`scratchcnn.reader.synthetic`."""

import sys

from scratchcnn.reader.synthetic import main

if __name__ == "__main__":
    sys.exit(main())
