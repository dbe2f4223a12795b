"""Training every model of the system, one stage config at a time (see docs/training.md).

* :mod:`.config`, :mod:`.typed` -- stage configs (TOML -> typed dataclasses, overrides, validation)
* :mod:`.trainer`             -- the loop: accumulation, AdamW + warm-up, clipping, EMA, NaN guard, budget
* :mod:`.tasks`, :mod:`.task_diffusion`, :mod:`.task_autoencoder` -- what each stage kind trains and exports
  (:mod:`.task_registry` picks one per stage kind)
* :mod:`.model_setup`, :mod:`.inputs`, :mod:`.data_setup`, :mod:`.precompute` -- models, encoders, data, caches
* :mod:`.parallel`            -- single process / DDP / FSDP2 behind one interface
* :mod:`.checkpoint`, :mod:`.train_state`, :mod:`.ema`, :mod:`.lr` -- resumable state
* :mod:`.export`, :mod:`.feedback` -- model folders, progress / TensorBoard / metrics
* :mod:`.graphed_step`         -- a whole training step recorded into one CUDA graph and replayed
"""
