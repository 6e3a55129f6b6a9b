"""Batch identification and verification as a pipeline: paths streamed from arguments, lists and
standard input (:mod:`.sources`), one record per image written and flushed as it comes, to JSON
lines or CSV, resumable (:mod:`.records`, :mod:`.output`), a loop that counts what it did and stops
cleanly on Ctrl-C (:mod:`.run`), and the same over a Ray cluster (:mod:`.ray_runner`, optional).

Nothing here imports numpy, the gallery or Ray at import time.
"""
