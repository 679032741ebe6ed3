"""Training: huanhuan.json -> tokenized SFT examples -> LoRA (or full) fine-tune -> adapter + report."""
