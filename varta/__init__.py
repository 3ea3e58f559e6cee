"""The top of Varta: the ``varta`` command line, the demo and the configuration reference.

Everything here may import ``edge_agent``, ``central``, ``bench``, ``models`` and ``shared``;
nothing below imports this package.
"""
