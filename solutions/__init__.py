"""Reference implementation of the exercise (instructors only)."""
