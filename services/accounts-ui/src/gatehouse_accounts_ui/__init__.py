"""The Gatehouse accounts page: a server-rendered view of the accounts."""
