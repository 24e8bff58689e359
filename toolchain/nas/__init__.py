"""`edgec nas`: search a network that fits a board's SRAM and flash budgets, each candidate
measured by edgec's own compiler, ranked by int8 accuracy from edgec's golden executor.

    space.py      candidates, the space file, candidate -> torch.nn.Module
    vit_space.py  the same for vision transformers (--space vit)
    measure.py    candidate -> arena / flash / MACs through edgec's compile stages (cached)
    proxy.py      training-free score (NASWOT)
    predictor.py  accuracy predictor (gradient-boosted trees) and rank correlations
    train.py      training, int8 accuracy on the golden executor
    worker.py     the tasks executors run
    executor.py   local processes, Ray, or inline
    search.py     aging evolution under the budgets, finalists, outputs (run_nas)
    report.py     nas/report.html
"""
from .search import NasInterrupted, NasOptions, run_nas

__all__ = ["NasInterrupted", "NasOptions", "run_nas"]
