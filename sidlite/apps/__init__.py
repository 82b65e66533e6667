"""Applications: the same sampler with a constraint, an initialization, a guidance term or an inversion.

One module per application. A module may define ``demo(folder: pathlib.Path) -> (title, note, files)``,
which ``sidlite demo`` calls to add that application to the gallery (files are names inside ``folder``).
"""
