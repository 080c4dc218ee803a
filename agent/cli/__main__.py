"""``python -m llmpulse.agent.cli``: the ``llmpulse`` command."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
