"""Data layer: the real on-disk formats of YouCook2-BB, ActivityNet-Entities and RoboWatch,
the HDF5 feature store, and the simulator that writes the embedded default dataset."""
