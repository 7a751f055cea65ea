"""The sync engine: plain Python, no Airflow import anywhere below this package.

Data flow of one direction (docs/architecture.md has the whole picture):
  precheck/       -> is the pair fit? (results into the control schema)
  schema_sync.py  -> destination gets the selected objects' DDL (name mapping applied)
  snapshot/       -> consistent copy of the rows + the binlog position it is consistent at
  binlog.py       -> whole source transactions (model.Transaction) from that position on
  apply.py        -> each transaction applied in one destination transaction with its checkpoint
  incremental.py  -> the loop: read, drop our own echoes, filter, map, apply, retry, heartbeat
Shared: model.py (data model), catalog.py (tables), sqltext.py (SQL text), values.py (values), status.py.
"""
