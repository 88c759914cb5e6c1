"""People's side: the web console and the REST API (thin: they call sync/ and classroom/ services)."""
