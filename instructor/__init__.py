"""Instructor tools: generate the student version in exercises/ from solutions/."""
