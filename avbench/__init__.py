"""avbench: benchmark harness and sweep orchestrator for audio and audio-visual classification.

Importing this package must stay cheap: no torch, no wandb, no optuna at import time.
"""

__version__ = "0.1.0"
