"""``python -m lotlip`` == ``lotlip``."""

import sys

from lotlip.cli import main

sys.exit(main())
