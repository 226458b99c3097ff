"""Given parts of the MNIST exercise: data, model, implementation loading and commands.

Students do not edit this package. Their work lives in ``exercises/``, and the reference
implementation in ``solutions/`` has the same layout.
"""
