"""Render a video of MNIST test digits on paper, to read without a camera.

``python -m scratchcnn.synthetic OUT.avi``: the command lives in :mod:`scratchcnn.reader.synthetic`.
"""

import sys

from scratchcnn.reader.synthetic import main

if __name__ == "__main__":
    sys.exit(main())
