"""The text side of SCL: queried objects, fixed word features (GloVe), contextual LM features, the text cache.

Submodules are imported on use (``from workbench.features.text_cache import TextFeatures``) so that importing
the package does not load torch or transformers.
"""
