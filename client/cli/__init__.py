"""The ``enclii`` command (alias ``conductor``)."""
