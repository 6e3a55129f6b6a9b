"""The residual extractor's identity, importable without numpy (the plugin registers from it)."""

VERSION = "3"  # 2: statistics through the projection learned from simulated generators; 3: + gate, constant
DIM = 65  # the learned projection's output: 2 x projection.COMPONENTS + 1
