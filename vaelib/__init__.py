"""vaelib: small, fast variational autoencoders with mixture priors.

One job per module (README.md, "Layout", has a line for each): `data` loads the data sets,
checks images (`check_images`) and binarises them; `distributions`, `priors`, `nets`, `model`
and `mixture_posterior` are the models; `train` fits them; `evaluate` scores them;
`experiments` names them and their budgets; `trained` gets a named model (`get_or_train`),
stored by `runs`, `reference`, `checkpoint` and `files`; `settings` reads the environment;
`checks` checks arguments; `classifier` judges generated digits; `notebook`, `plots` and
`explorer` put results on a page; `__main__` is the command line.

Spelling: identifiers are American (`binarize_static`, `FactorizedMixture`, `neighbor_purity`,
`DIGIT_COLORS`), prose and docstrings British (binarisation, factorised). One exception: the
binarization mode "grey" keeps its name, because it is recorded in the identity of trained runs.
"""

__version__ = "0.1.0"
