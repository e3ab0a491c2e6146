"""The one training loop (device, precision, seeds, checkpoint/resume) for every modality."""
