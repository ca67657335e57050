"""``python -m bench [--quick] [--out DIR] ...``: run every benchmark, write results.md + results.json."""

import sys

from bench.run import main

sys.exit(main())
