"""The e2e fixture: a real Airflow (``airflow standalone``) over the suite's MySQL pair."""

from __future__ import annotations

import pytest

from airflow_provider_dts.demo import AirflowStandalone
from airflow_provider_dts.localpair import free_port


@pytest.fixture
def airflow(clean_pair, tmp_path):
    af = AirflowStandalone(tmp_path / "airflow", port=free_port(), env=clean_pair.env())
    af.start()
    try:
        af.wait_ready(timeout=240)
        yield af
    finally:
        af.stop()
        assert not af.running(), "airflow standalone is still running after stop()"
