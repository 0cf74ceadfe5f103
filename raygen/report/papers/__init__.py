"""What the report adds for one paper's sections, one file per paper, and the generic
"Paper vs raygen" comparison of a sweep's published values (``comparison``)."""
