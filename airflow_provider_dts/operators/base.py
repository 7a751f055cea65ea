"""Shared plumbing of the DTS operators: direction configuration in, engine connection settings out.

Operators take the direction as a dict, a JSON string (e.g. rendered from XCom) or a ``SyncDirection``.
Nothing is parsed or looked up in ``__init__``: that happens in ``execute``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, cast

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.servers import ConnectionSettings
from airflow_provider_dts.hooks.dts import DtsMySqlHook


def parse_direction(value: Any) -> SyncDirection:
    if isinstance(value, SyncDirection):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError([f"direction: not valid JSON ({e.msg} at character {e.pos})"]) from None
    if not isinstance(value, dict):
        raise ConfigError([f"direction: expected a dict or JSON object, got {type(value).__name__}"])
    return SyncDirection.from_dict(value)


class DtsDirectionOperator(BaseOperator):
    """Base for operators that act on one sync direction."""

    template_fields: Sequence[str] = ("direction",)
    ui_color = "#e8f4ea"

    def __init__(self, *, direction: dict[str, Any] | str | SyncDirection, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direction = direction.to_dict() if isinstance(direction, SyncDirection) else direction

    @property
    def engine_log(self) -> logging.Logger:
        """This task's logger, for the engine's ``logger=`` parameters.

        The engine annotates them ``logging.Logger``; it only calls debug/info/warning/error/exception with
        %-style arguments, which Airflow's task logger (a structlog ``FilteringBoundLogger``, not a
        ``logging.Logger``) provides as well. The cast states that; nothing is converted.
        """
        return cast(logging.Logger, self.log)

    def get_direction(self) -> SyncDirection:
        return parse_direction(self.direction)

    @staticmethod
    def settings_for(conn_id: str) -> ConnectionSettings:
        return DtsMySqlHook(mysql_conn_id=conn_id).get_settings()

    def endpoints(self, direction: SyncDirection) -> tuple[ConnectionSettings, ConnectionSettings]:
        return self.settings_for(direction.source_conn_id), self.settings_for(direction.destination_conn_id)

    def resolve(self) -> tuple[SyncDirection, ConnectionSettings, ConnectionSettings]:
        """The direction and both servers' settings. Bad input fails the task at once (retrying cannot help)."""
        try:
            direction = self.get_direction()
        except ConfigError as e:
            raise AirflowFailException(str(e)) from None
        try:
            source, destination = self.endpoints(direction)
        except Exception as e:
            raise AirflowFailException(
                f"{direction.key}: cannot look up the Airflow connections {direction.source_conn_id!r} / "
                f"{direction.destination_conn_id!r}: {e}. Fix: define both connections (Admin > Connections, or "
                "AIRFLOW_CONN_<CONN_ID> environment variables) with conn_type mysql"
            ) from None
        return direction, source, destination
