"""``python -m scratchcnn.predict``: the command lives in :mod:`scratchcnn.reader.predict`."""

import sys

from scratchcnn.reader.predict import main

if __name__ == "__main__":
    sys.exit(main())
