"""What the command-line programs share: a user's mistake is one line on stderr and exit code 2;
Ctrl-C is one line and exit code 130."""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by Ctrl-C (128 + SIGINT)


class CLIError(Exception):
    """A problem the user can fix; shown as one line on stderr, exit code 2."""


def run_cli(prog: str, main: Callable[[], int]) -> int:
    """Run ``main``; turn expected failures (a :class:`CLIError`, a bad file or value, a missing
    optional package, an operating-system error, running out of memory) into
    ``prog: error: message`` and exit code 2, and Ctrl-C anywhere into ``prog: interrupted`` and
    exit code 130 — one line, never a traceback."""
    try:
        return main()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError as err:
        print(f"{prog}: error: out of memory ({err or 'MemoryError'})", file=sys.stderr)
        return EXIT_USAGE
    except (CLIError, ImportError, ValueError, OSError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
