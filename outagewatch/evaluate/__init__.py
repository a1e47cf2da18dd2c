"""`outagewatch evaluate` and `outagewatch detect-csv`: recorded input through the production detectors, scored."""
