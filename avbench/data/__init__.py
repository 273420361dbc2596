"""Decoding, features, the feature cache and the datasets that feed `fit()`."""
