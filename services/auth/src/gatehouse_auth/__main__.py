"""``python -m gatehouse_auth`` is ``gatehouse-auth``."""

from gatehouse_auth.cli import main

if __name__ == "__main__":
    main()
