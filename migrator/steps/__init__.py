"""One module per pipeline step; each exposes ``run(settings, ...)``."""
