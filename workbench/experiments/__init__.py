"""What launches runs: executors, grid sweeps, world sweeps, studies. Never formats tables."""
