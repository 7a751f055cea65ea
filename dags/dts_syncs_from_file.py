"""Two-way syncs declared in a file (kept in git): one generated DAG ``dts_sync_<task_name>`` per sync.

The file is ``$DTS_SYNCS_FILE``, else ``dts_syncs.yaml`` next to this module; without it this module defines
no DAG. YAML or JSON, one entry per sync under ``syncs``; the key is the sync's ``task_name``, the values are
the params of ``dts_two_way_sync`` (same names, same rules), which become the generated DAG's defaults::

    syncs:
      shop_eu:
        source_conn_id: eu_a
        destination_conn_id: eu_b
        objects: [shop]
      billing:
        source_conn_id: billing_primary
        destination_conn_id: billing_dr
        objects: [billing.invoices, billing.payments]
        conflict_policy: Overwrite

Each entry is validated here exactly as ``configure`` validates a trigger (``build_task``): a bad entry makes
this file fail to import with every problem named (sync, field, fix), shown among Airflow's import errors.
Start a declared sync by triggering its DAG with no conf (``airflow dags trigger dts_sync_shop_eu``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DAG_ID_PREFIX = "dts_sync_"


@functools.lru_cache(maxsize=1)
def _two_way_module():
    """dags/dts_two_way_sync.py, loaded without its own DAG (DTS_NO_DEFAULT_DAG): make_dag, build_task."""
    path = HERE / "dts_two_way_sync.py"
    spec = importlib.util.spec_from_file_location("_dts_two_way_sync_factory_base", path)
    if spec is None or spec.loader is None:  # only when the file is not a Python source
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    vars(module)["DTS_NO_DEFAULT_DAG"] = True  # read by dts_two_way_sync when it runs: make no DAG of its own
    spec.loader.exec_module(module)
    return module


def syncs_file() -> Path:
    return Path(os.environ.get("DTS_SYNCS_FILE") or HERE / "dts_syncs.yaml")


def load_syncs(path: Path) -> dict[str, dict[str, Any]]:
    """task_name -> settings, validated; raises ConfigError (from the engine) naming every bad entry."""
    from airflow_provider_dts.engine.errors import ConfigError

    base = _two_way_module()
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: not valid YAML/JSON: {e}"]) from None
    if not isinstance(doc, dict) or set(doc) - {"syncs"} or not isinstance(doc.get("syncs") or {}, dict):
        raise ConfigError([f"{path}: expected a mapping with one key, syncs: {{<task_name>: {{<param>: value}}}}"])
    out, problems = {}, []
    for name, settings in (doc.get("syncs") or {}).items():
        if not isinstance(settings, dict):
            problems.append(f"syncs.{name}: expected a mapping of dts_two_way_sync params")
            continue
        if "task_name" in settings and settings["task_name"] != name:
            problems.append(f"syncs.{name}.task_name: the entry's key is its task_name; remove task_name")
            continue
        values = {**settings, "task_name": str(name)}
        try:
            base.build_task(values)
        except ConfigError as e:
            problems += [f"syncs.{name}.{p}" for p in e.problems]
            continue
        out[str(name)] = values
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return out


def build_dags(path: Path) -> dict[str, Any]:
    base = _two_way_module()
    dags = {}
    for name, values in load_syncs(path).items():
        dag_id = f"{DAG_ID_PREFIX}{name}"
        dags[dag_id] = base.make_dag(
            dag_id,
            defaults=values,
            display_name=f"DTS two-way sync {name}",
            tags=("declared in file",),
            doc_md=f"Two-way sync `{name}` declared in `{path}`. Trigger with no conf to start or resume it.\n\n"
            + (base.__doc__ or ""),
        )
    return dags


if syncs_file().exists():
    globals().update(build_dags(syncs_file()))
