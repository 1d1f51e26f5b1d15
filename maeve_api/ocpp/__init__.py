"""The OCPP-J websocket endpoint: station authentication, message handlers and delivery of what is staged."""
