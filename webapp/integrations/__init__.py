"""Ways in from Airflow (and any Python worker), talking to the service over HTTP only.

- ``webapp.integrations.airflow.TaskStoreBackend``: an Airflow 3.3 state-store backend
  (``[state_store] backend``): Airflow's execution API keeps every worker's task and asset
  state here instead of in its metadata database.
- ``webapp.integrations.accessor.TaskStateStore``: the API of Airflow 3.3's
  ``context["task_state_store"]`` for any Python worker (Airflow 2.x, 3.0-3.2, or none).
- ``webapp.integrations.airflow_plugin.TaskStorePlugin``: an Airflow plugin whose listener
  (``webapp.integrations.airflow_listener``) reports DAG-run and task-instance states.
- ``webapp.integrations.service_client``: the HTTP layer they share (the service API under
  ``/api/v2/service``, an API key of role ``service``), and their settings.

Nothing here imports the service itself (Flask, SQLAlchemy, the models); only
``webapp.client`` (httpx, PyJWT, tenacity). Importing this package imports nothing.
"""
