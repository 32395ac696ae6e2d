"""``python -m routing explain|import|bench ...``."""

import sys

from routing.cli import main

sys.exit(main())
