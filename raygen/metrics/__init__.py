"""Scoring a trained model: ``evaluate`` runs the registered metric families
(``families``) on pure score functions (``scores``) over features of the domain
classifier (``classifier``) or pytorch-fid's InceptionV3 (``inception``); ``bench``
measures what evaluation costs."""
