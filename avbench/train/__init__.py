"""The training loop: fit()/evaluate() with Accelerate. Never imports optuna or wandb."""
