"""The run machinery of the training experiments: flags, workdirs, checkpoints,
preemption, several hosts and the training loop."""
