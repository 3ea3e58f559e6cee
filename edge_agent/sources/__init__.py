"""Camera source backends; the public API and the registry are in ``edge_agent.capture``."""
