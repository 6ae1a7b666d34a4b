"""What each query, mutation and subscription does: async functions over the store that
know nothing of GraphQL."""
