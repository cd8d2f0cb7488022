"""What commands work with, opened only when a command needs it (keeps `--help` fast)."""

from __future__ import annotations

from functools import cached_property

import click

from factflow_assets.settings import Settings


class Environment:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()

    @cached_property
    def db(self):
        from resources.database import FactflowDatabase

        return FactflowDatabase(self.settings.database_url)

    @cached_property
    def store(self):
        from resources.storage import ObjectStore

        return ObjectStore(self.settings.storage_uri, self.settings.s3_endpoint_url)

    @cached_property
    def instance(self):
        from factflow_assets.operations.instance import dagster_instance

        return dagster_instance(self.settings)


#: Hands a command the Environment, creating one from the process environment on first use.
pass_environment = click.make_pass_decorator(Environment, ensure=True)
