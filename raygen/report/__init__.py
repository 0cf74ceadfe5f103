"""The comparison report: reads a run's Parquet files and images only (``run``), analyses
them (``analysis``), and renders tables, plots and image grids into one page (``page``).
``python -m raygen.report`` is ``__main__``."""
