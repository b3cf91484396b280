"""Under torchrun: `imgclf train DATA --seed RANK`, so the ranks' configs differ (a test's)."""

import os
import sys

from imgclf.cli import app

data, project = sys.argv[1:3]
sys.argv = ["imgclf", "train", data, "--model", "cnn", "--quiet", "--project", project,
            "--seed", os.environ["RANK"]]  # fmt: skip
app()
