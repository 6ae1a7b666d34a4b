"""The local data plane: builds, processes and the router, on one machine."""
