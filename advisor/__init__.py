"""advisor: will open LLMs run on your hardware, how well, and is it cheaper than a cloud API?

Library use (the CLI is built on the same functions; see advisor.api):

    >>> from advisor import api
    >>> machine = api.simulated_machine(gpus=("RTX 4090",), ram_gib=64)
    >>> est = api.fit_one("llama-3-8b", "Q4_K_M", api.KVChoice(), api.EngineSettings(), 8192, machine)
    >>> est.kv_bytes // 2**20, est.placement
    (1024, 'gpu')
"""

__version__ = "0.1.0"
