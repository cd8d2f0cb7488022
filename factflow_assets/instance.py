"""The Dagster instance factflow uses, with a DAGSTER_HOME a new user never has to create.

`DAGSTER_HOME` defaults to `$FACTFLOW_HOME/dagster`; on first use it is created and the project's
`dagster.yaml` copied into it. The variable is also exported, so code servers and daemons that
factflow starts find the same instance.
"""

from __future__ import annotations

import os
import shutil

from dagster import DagsterInstance

from .settings import PROJECT_ROOT, Settings

INSTANCE_TEMPLATE = PROJECT_ROOT / "dagster.yaml"


def ensure_dagster_home(settings: Settings) -> None:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(INSTANCE_TEMPLATE, config)
    os.environ["DAGSTER_HOME"] = str(home)


def dagster_instance(settings: Settings) -> DagsterInstance:
    ensure_dagster_home(settings)
    return DagsterInstance.get()
