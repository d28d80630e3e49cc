"""The training loop shared by every task, with checkpoints, resume and progress."""
