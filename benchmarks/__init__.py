"""sidlite benchmarks: ``python benchmarks/run.py`` (``make bench``); one module per section."""
