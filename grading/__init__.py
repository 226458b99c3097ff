"""The grading suite: run `pytest grading/` to grade exercises/ (see conftest.py)."""
