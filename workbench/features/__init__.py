"""The caches training reads: the region-feature store, the training batches, the text-feature cache."""
