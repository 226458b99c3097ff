"""Your implementation of the exercise: fill in every TODO."""
