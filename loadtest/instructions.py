"""Entry point of ``make bench-instructions``: see loadtest/gatehouse_loadtest/instructions.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gatehouse_loadtest.instructions import main

if __name__ == "__main__":
    main()
