"""Read the handwritten digits in still images, one JSON line per image.

``python -m scratchcnn.predict IMAGE...``: the command lives in :mod:`scratchcnn.reader.predict`.
"""

import sys

try:
    from scratchcnn.reader.predict import main
except KeyboardInterrupt:  # Ctrl-C while the libraries load: one line, as anywhere else
    print("python -m scratchcnn.predict: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
