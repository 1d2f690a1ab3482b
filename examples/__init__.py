"""Example backend services built on roomstreams (run them as scripts: see their docstrings)."""
