"""What the command-line programs share: a user's mistake is one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by Ctrl-C (128 + SIGINT)


class CLIError(Exception):
    """A problem the user can fix; shown as one line on stderr, exit code 2."""


def run_cli(prog: str, main: Callable[[], int]) -> int:
    """Run ``main``; turn expected failures (a :class:`CLIError`, a bad file or value, a missing
    optional package, an operating-system error) into ``prog: error: message`` and exit code 2."""
    try:
        return main()
    except (CLIError, ImportError, ValueError, OSError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
