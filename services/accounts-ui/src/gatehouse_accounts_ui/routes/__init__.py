"""The page's routers: the listing (``page``) and signing in and out (``session``)."""

from gatehouse_accounts_ui.routes import page, session

__all__ = ["page", "session"]
