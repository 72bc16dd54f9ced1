"""The JSON API for programs: the worker API (``/execution``) and the admin API (``/api/v2``)."""
