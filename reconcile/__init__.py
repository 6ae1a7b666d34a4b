"""Controllers (level-triggered loops) and data-plane drivers. The local and Kubernetes
drivers arrive with the data-plane issues."""
