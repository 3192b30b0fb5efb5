"""Score a reader's JSON lines against a rendered video's truth: digits found, read, spurious.

``python -m scratchcnn.score TRUTH.json DETECTIONS.jsonl``: the command lives in
:mod:`scratchcnn.reader.score`.
"""

import sys

from scratchcnn.reader.score import main

if __name__ == "__main__":
    sys.exit(main())
