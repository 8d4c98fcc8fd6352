"""``puppetry bench``'s figures on a short real run (speed itself is checked by benchmarks, never by tests)."""

from puppetry.benchmark import run_benchmark


def test_floor_is_measured_and_shown(data):
    result = run_benchmark("astronaut", str(data / "driving" / "d0.mp4"), max_frames=6)
    assert result.frames == 6
    assert result.floor_ms is not None and result.floor_ms > 0
    assert all(ms >= 0 for ms in result.ms_per_frame.values())
    assert result.ms_per_frame["encode"] > 0                # the hand-over and the file's finish are timed
    table = result.table()
    assert "floor (decode + encode only)" in table and "x the floor" in table
