"""Instructor-only checks, collected only by ``pytest grading/ --hidden``.

They use the fixtures, tasks and points of the public checks in ``grading/``, and add their
points to the same tasks. The student release does not contain this folder.
"""
