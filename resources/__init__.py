"""Resources: object storage, the factflow database, the HTTP client (plain Python), and their
Dagster `ConfigurableResource` wrappers in `resources.dagster_resources`.

Nothing is imported here, so importing a store does not import Dagster.
"""
