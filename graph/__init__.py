"""The GraphQL layer: Strawberry types over the resolvers, the schema, the ASGI app."""
