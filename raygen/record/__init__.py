"""The run record: the contract between a trial, the sweep that runs it and the report
that reads it. Every key a trial reports and its kind (``keys``), the one encoding across
the Ray boundary (``transport``), the run folder's file names (``layout``), a result row
(``rows``), the Parquet files and their metadata (``files``), column declarations
(``columns``) and a sweep's published values (``published``). Plain Python, pandas and
pyarrow: no torch, no Ray."""
