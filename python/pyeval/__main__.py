"""`python -m pyeval ARGS...`: the `pyeval` command line (see `pyeval --help`)."""

import signal
import sys

from ._pyeval import main

if __name__ == "__main__":
    # Ctrl-C ends the run as it ends the `pyeval` binary.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(main(["pyeval", *sys.argv[1:]]))
