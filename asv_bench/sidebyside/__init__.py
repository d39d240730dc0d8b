"""The parts of ``asv_bench/side_by_side.py``: its options, cases, contenders, timing and report."""

__all__: list[str] = []
