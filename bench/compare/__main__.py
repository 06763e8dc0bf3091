"""``python -m bench.compare [--quick]``: the comparison's section alone."""

import sys

from bench.compare import run

print(run("--quick" in sys.argv))
