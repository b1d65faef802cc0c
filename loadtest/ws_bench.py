"""Entry point of ``make bench-ws``: see loadtest/gatehouse_loadtest/websocket.py and README.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gatehouse_loadtest.websocket import main

if __name__ == "__main__":
    main()
