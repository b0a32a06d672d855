"""The run machinery of the training experiments: flags, workdirs, checkpoints,
preemption, several hosts, and one run lifecycle (:mod:`.lifecycle`: start, lock,
resume, train with the cadence hooks of :mod:`.hooks`, finish) that one run and a
population share; :mod:`.launch` is the prologue of every training command."""
