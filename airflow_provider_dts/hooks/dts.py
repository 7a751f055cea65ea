"""Airflow connection -> engine connection settings.

Uses providers-mysql's ``mysql`` connection type and its extras: ``ssl`` (a dict or JSON string with
``ca``, ``cert``, ``key``, optionally ``check_hostname``), ``ssl_mode`` (``DISABLED``, ``PREFERRED``,
``REQUIRED``, ``VERIFY_CA``, ``VERIFY_IDENTITY``), ``ssl_ca`` / ``ssl_cert`` / ``ssl_key``, ``charset``,
``unix_socket``. Sessions always run in UTC (``time_zone='+00:00'``).
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_dts.engine.servers import ConnectionSettings, ServerInfo, server_info


def settings_from_connection(conn: Any) -> ConnectionSettings:
    """Build engine settings from an Airflow ``Connection`` (sync or async lookup alike)."""
    extra = dict(conn.extra_dejson or {})
    ssl: dict[str, Any] = {}
    raw_ssl = extra.get("ssl")
    if isinstance(raw_ssl, str) and raw_ssl.strip():
        raw_ssl = json.loads(raw_ssl)
    if isinstance(raw_ssl, dict):
        ssl.update({k: v for k, v in raw_ssl.items() if k in ("ca", "cert", "key", "check_hostname")})
    for k in ("ca", "cert", "key"):
        if extra.get(f"ssl_{k}"):
            ssl[k] = extra[f"ssl_{k}"]
    mode = str(extra.get("ssl_mode", "")).upper()
    if mode == "DISABLED":
        ssl = {}
    elif ssl or mode:
        verify_cert = mode in ("VERIFY_CA", "VERIFY_IDENTITY") or (not mode and bool(ssl.get("ca")))
        ssl["verify_cert"] = verify_cert
        ssl["verify_identity"] = mode == "VERIFY_IDENTITY" or bool(ssl.pop("check_hostname", False))
    return ConnectionSettings(
        host=conn.host or "127.0.0.1",
        port=int(conn.port or 3306),
        user=conn.login or "root",
        password=conn.password or "",
        database=None,
        unix_socket=extra.get("unix_socket") or None,
        ssl=ssl or None,
        charset=extra.get("charset") or "utf8mb4",
        name=conn.conn_id or "",
    )


class DtsMySqlHook(BaseHook):
    """Opens PyMySQL connections for the sync engine from an Airflow ``mysql`` connection."""

    conn_name_attr = "mysql_conn_id"
    default_conn_name = "dts_source"
    conn_type = "mysql"
    hook_name = "MySQL (DTS two-way sync)"

    def __init__(self, mysql_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mysql_conn_id = mysql_conn_id

    def get_settings(self) -> ConnectionSettings:
        return settings_from_connection(self.get_connection(self.mysql_conn_id))

    @classmethod
    async def aget_settings(cls, conn_id: str) -> ConnectionSettings:
        return settings_from_connection(await cls.aget_connection(conn_id))

    def get_conn(self):
        return self.get_settings().connect()

    def server_info(self) -> ServerInfo:
        with self.get_conn() as conn:
            return server_info(conn)
