"""Apache Airflow provider for DTS-style two-way MySQL synchronization."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-dts",
        "name": "DTS two-way MySQL sync",
        "description": "Two-way real-time MySQL/MariaDB synchronization: precheck, initial schema and data "
        "sync, binlog-based incremental sync both ways with conflict policies.",
        "versions": [__version__],
        "hooks": [
            {"integration-name": "DTS MySQL sync", "python-modules": ["airflow_provider_dts.hooks.dts"]},
        ],
        "operators": [
            {
                "integration-name": "DTS MySQL sync",
                "python-modules": [
                    "airflow_provider_dts.operators.precheck",
                    "airflow_provider_dts.operators.initial_sync",
                    "airflow_provider_dts.operators.incremental",
                    "airflow_provider_dts.operators.health",
                    "airflow_provider_dts.operators.verify",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "DTS MySQL sync", "python-modules": ["airflow_provider_dts.sensors.sync_state"]},
        ],
        "triggers": [
            {
                "integration-name": "DTS MySQL sync",
                "python-modules": [
                    "airflow_provider_dts.triggers.incremental",
                    "airflow_provider_dts.triggers.conflict_answer",
                    "airflow_provider_dts.triggers.sync_state",
                    "airflow_provider_dts.triggers.health",
                ],
            }
        ],
        "extra-links": ["airflow_provider_dts.operators.incremental.DtsStatusLink"],
        "integrations": [
            {
                "integration-name": "DTS MySQL sync",
                "external-doc-url": "https://github.com/airflow-provider-dts/airflow-provider-dts",
                "tags": ["software"],
            }
        ],
    }
