"""factflow on Dagster: pipeline configs, adapters, the asset factory.

The Dagster code location is `factflow_assets.definitions` (see workspace.yaml); importing this
package alone builds nothing.
"""
