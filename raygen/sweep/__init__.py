"""Everything that touches Ray: the command line (``cli``, run by ``python -m raygen.sweep``),
sweep files read into a ``Sweep`` without torch or Ray (``spec``), checks before Ray starts
(``preflight``), the Ray Tune trainable around the engine (``trainable``), collecting Ray's
results into the record (``collect``) and Tune callbacks (``callbacks``: the console, the
state guard, trackers). Importing the package loads nothing: ``--help`` stays instant."""
