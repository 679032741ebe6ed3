"""`python -m training --config configs/lora_tiny.yaml [--field value ...]`: run one fine-tune (see training.train)."""

import sys

from training.train import main

if __name__ == "__main__":
    sys.exit(main())
