"""The Airflow plugin that installs the state-reporting listener
(``webapp.integrations.airflow_listener``). Airflow finds it through the package's entry
point (``[project.entry-points."airflow.plugins"] taskstore = ...``): installing the package
where Airflow runs is enough; it reports only once ``[taskstore] url`` and ``api_key`` are set.
"""

from __future__ import annotations

from webapp.integrations import airflow_listener

try:  # the Task SDK's (Airflow 3.2+, also on workers without airflow-core) ...
    from airflow.sdk.plugins_manager import AirflowPlugin
except ImportError:  # ... or core's (Airflow 2.x, 3.0, 3.1)
    from airflow.plugins_manager import AirflowPlugin

__all__ = ["TaskStorePlugin"]


class TaskStorePlugin(AirflowPlugin):
    name = "taskstore"
    listeners = [airflow_listener]
