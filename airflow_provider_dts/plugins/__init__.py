"""Airflow UI plugins of the provider: ``status.DtsStatusPlugin`` (the "DTS sync" status page at ``/dts/``)."""
