"""Airflow plugin: the API server refuses a bad monthly_settlement trigger in words
(supernova/trigger_guard.py). Load it with AIRFLOW__CORE__PLUGINS_FOLDER=<project>/plugins."""

from supernova.trigger_guard import SupernovaTriggerGuardPlugin

__all__ = ["SupernovaTriggerGuardPlugin"]
