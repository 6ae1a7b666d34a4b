"""The one store: SQLAlchemy models, migrations, the durable event log, the Service Spec
and the rules both the API and the controllers need. Imports nothing else of Enclii's."""
