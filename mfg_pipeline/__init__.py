"""mfg-pipeline: factory data -> self-supervised backbones -> finetuned task models."""
