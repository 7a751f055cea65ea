from airflow_provider_dts.engine.verify import keyset_after


def test_keyset_single_column():
    assert keyset_after(["id"], (5,), ">") == ("((`id` > %s))", [5])
    assert keyset_after(["id"], (9,), "<=") == ("((`id` <= %s))", [9])
    assert keyset_after(["id"], None) == ("1=1", [])


def test_keyset_composite_is_lexicographic():
    sql, args = keyset_after(["a", "b"], (1, "x"), ">")
    assert sql == "((`a` > %s) OR (`a` = %s AND `b` > %s))"
    assert args == [1, 1, "x"]
    sql, args = keyset_after(["a", "b"], (1, "x"), "<=")
    assert sql == "((`a` < %s) OR (`a` = %s AND `b` <= %s))"
    assert args == [1, 1, "x"]
