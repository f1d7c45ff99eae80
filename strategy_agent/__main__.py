"""``python -m strategy_agent``: see ``strategy_agent.cli``."""

import sys

from strategy_agent.cli import main

sys.exit(main())
