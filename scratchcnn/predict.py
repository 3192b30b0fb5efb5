"""Read the handwritten digits in still images, one JSON line per image.

``python -m scratchcnn.predict IMAGE...``: the command lives in :mod:`scratchcnn.reader.predict`.
"""

import sys

from scratchcnn.reader.predict import main

if __name__ == "__main__":
    sys.exit(main())
