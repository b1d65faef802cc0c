"""WebSocket proxying: the ASGI ``websocket`` scope, from handshake to close.

``handler`` routes and authorises the handshake as the HTTP path does,
``admission`` counts it against the route's rate limits and quotas and answers
refusals,
``upstream`` opens the backend's WebSocket, ``bridge`` relays messages both
ways with backpressure, ``sessions`` ends sockets whose backend went away,
``tokens`` reads a handshake's token, ``metrics`` counts it all.
"""
