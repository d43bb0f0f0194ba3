"""`python -m engine.capacity`: see `engine/capacity/cli.py`."""

import sys

from engine.capacity.cli import main

sys.exit(main())
