"""The client side of Enclii: the generated typed client and the ``enclii`` CLI.

Nothing here imports the server packages, except the ``serve`` and ``db`` verbs, which
import them lazily when run.
"""
