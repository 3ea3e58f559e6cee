"""National hub and regions: signed wanted lists and forwarded alerts (docs/national-hub.md).

A national hub is a central with ``national.hub: true``: it publishes some of its lists,
signed with its Ed25519 key, and keeps the alerts regions forward. A region is a central
whose ``watchlists.sync`` pulls those lists (verifying the signature) and whose
``national.forward`` sends the alerts on them to the hub through the webhook outbox.
"""
