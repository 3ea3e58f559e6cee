"""HTTP API: thin controllers over central's services."""
