"""Entry point of ``make callgrind``: see loadtest/gatehouse_loadtest/callgrind.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gatehouse_loadtest.callgrind import main

if __name__ == "__main__":
    main()
