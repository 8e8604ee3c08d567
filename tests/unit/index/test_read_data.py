"""The read-data cycle's position: every slice once, then the cycle starts again."""

from syncer.index.db import StateDB
from syncer.index.read_data import next_slice, read_data_position, record_slice


def test_slices_advance_and_the_last_one_ends_the_cycle(tmp_path):
    db = StateDB(tmp_path)
    address = "s3:http://127.0.0.1/bucket"
    assert read_data_position(db, address) is None and next_slice(None, 3) == 1
    record_slice(db, address, 3, 1, now=100.0)
    record_slice(db, address, 3, 2, now=200.0)
    position = read_data_position(db, address)
    assert next_slice(position, 3) == 3 and position["cycle_started"] == 100.0 and position["last_full"] is None
    record_slice(db, address, 3, 3, now=300.0)
    position = read_data_position(db, address)
    assert next_slice(position, 3) == 1 and position["last_full"] == 300.0
    record_slice(db, address, 3, 1, now=400.0)
    assert read_data_position(db, address)["cycle_started"] == 400.0
    # a policy now cutting the data in 5: a new cycle from slice 1, the last full read kept
    position = read_data_position(db, address)
    assert next_slice(position, 5) == 1
    record_slice(db, address, 5, 1, now=500.0)
    assert read_data_position(db, address) == {"slices": 5, "next_slice": 2, "cycle_started": 500.0,
                                               "last_full": 300.0}
    assert read_data_position(db, "elsewhere") is None
