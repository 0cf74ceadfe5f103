"""Training without Ray: a flat config split into the trainer's and the model's settings
(``config``), one configuration built, trained, evaluated and saved (``trial``), and K
configurations trained as one vectorised model (``stacking``)."""
