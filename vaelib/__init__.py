"""vaelib: small, fast variational autoencoders with mixture priors.

One job per module: `data` loads the data sets, checks images (`check_images`) and binarises
them; `priors`, `nets`, `model` and `mixture_posterior` are the models; `train` fits them;
`evaluate` scores them (ELBO, importance-weighted likelihood, codes, the score card and the
statistics that compare two models); `experiments` names them and their budgets; `classifier`
judges generated digits; `notebook` and `plots` put results on a page; `runs`, `reference`
and `checkpoint` store trained weights.

Spelling: identifiers are American (`binarize_static`, `FactorizedMixture`, `neighbor_purity`,
`DIGIT_COLORS`), prose and docstrings British (binarisation, factorised). One exception: the
binarization mode "grey" keeps its name, because it is recorded in the identity of trained runs.
"""

__version__ = "0.1.0"
