"""Training: how the shipped model files were made, kept apart from run time.

Owns the residual extractor's learned projection (:mod:`.projection`,
``python -m attrib.training.projection``) and the derivation of its statistics' constants
(:mod:`.constants`). Needs the ``train`` extra (scikit-learn, scikit-image). Nothing at run
time imports this package.
"""
