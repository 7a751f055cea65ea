"""Every-type rows copied through both literal paths of engine.values arrive exactly (real servers): the copy's
(the source renders the text) and the applier's (``values.make_literal`` on the destination connection)."""

from __future__ import annotations

from typesample import TYPE_ROWS, column_names, create_type_table, insert_type_rows, read_type_rows

from airflow_provider_dts.engine.catalog import load_columns
from airflow_provider_dts.engine.sqltext import quote_ident
from airflow_provider_dts.engine.values import WRITER_SQL_MODE, row_literal, row_literal_sql


def _diff(a_rows, b_rows):
    out = []
    for x, y in zip(a_rows, b_rows):
        out += [(x[0], n, u, v) for n, u, v in zip(column_names(), x, y) if u != v]
    return out


def _prepare(pair):
    a, b = pair.a.root_connect(), pair.b.root_connect()
    create_type_table(a, "vals")
    insert_type_rows(a, "vals")
    create_type_table(b, "vals")
    return a, b


def _writer(conn):
    cur = conn.cursor()
    cur.execute(f"SET SESSION sql_mode='{WRITER_SQL_MODE}', time_zone='+00:00'")
    return cur


def test_server_rendered_literals_round_trip_every_type(clean_pair):
    a, b = _prepare(clean_pair)
    cols = [c for c in load_columns(a, "vals", "every_type") if not c.generated]
    assert "gen_v" not in [c.name for c in cols] and len(cols) == len(column_names()) - 2
    with a.cursor() as cur:
        cur.execute("SET time_zone='+00:00'")
        cur.execute(f"SELECT {row_literal_sql(cols)} FROM vals.every_type ORDER BY id")
        literals = [r[0] for r in cur.fetchall()]
    assert all(isinstance(x, bytes) for x in literals)
    names = ", ".join(quote_ident(c.name) for c in cols).encode()
    _writer(b).execute(b"INSERT INTO vals.every_type (" + names + b") VALUES " + b",".join(literals))
    src, dst = read_type_rows(a, "vals"), read_type_rows(b, "vals")
    assert len(src) == len(TYPE_ROWS)
    assert _diff(src, dst) == []
    assert src == dst


def test_python_rendered_literals_round_trip_every_type(clean_pair):
    """The path of the binlog applier: decoded Python values -> their column kind's fixes (as the reader's
    ``binlog.normalize_value``) -> the applier's renderer (``values.make_literal`` bound to the destination
    connection) -> destination."""
    a, b = _prepare(clean_pair)
    cols = [c for c in load_columns(a, "vals", "every_type") if not c.generated]
    # FLOAT read through a double: the text protocol prints FLOAT with 6 digits (the binlog is exact).
    select = ", ".join(f"{quote_ident(c.name)}+0e0" if c.kind == "float" else quote_ident(c.name) for c in cols)
    with a.cursor() as cur:
        cur.execute("SET time_zone='+00:00'")
        cur.execute(f"SELECT {select} FROM vals.every_type ORDER BY id")
        rows = cur.fetchall()
    kinds = [c.kind for c in cols]
    names = ", ".join(quote_ident(c.name) for c in cols)
    _writer(b).execute(
        f"INSERT INTO vals.every_type ({names}) VALUES " + ",".join(row_literal(r, kinds, conn=b) for r in rows)
    )
    src, dst = read_type_rows(a, "vals"), read_type_rows(b, "vals")
    assert _diff(src, dst) == []
    assert len(dst) == len(TYPE_ROWS)
