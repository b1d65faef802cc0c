"""Entry point of ``make bench``: see loadtest/gatehouse_loadtest/bench.py and README.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gatehouse_loadtest.bench import main

if __name__ == "__main__":
    main()
