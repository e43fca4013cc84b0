"""Every generator of simulated data: shared base, world v1, world v2, the ANet world, cues, knobs, oracles."""
