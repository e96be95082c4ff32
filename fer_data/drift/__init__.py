"""Drift checks: do new production faces still look like the training corpus?

    config    the `drift:` block of params.yaml (pydantic, validated before any work)
    ingest    a production batch (images, videos, Parquet) -> curated rows, through fer_data.curate
    profile   the reference corpus summarised once (histograms, samples, class mix), saved as one file
    stats     the two-sample tests (scipy's KS and chi-square, PSI, chunked MMD with permutations, Holm)
    checks    the battery: one Check per test, corrected for testing many at once, and its verdict
    model     predicted classes from a TorchScript model (predicted-class shift)
    report    the self-contained HTML page of one check
    run       `check_batch`: ingest + checks + drift.json + index.html (what the CLI and the flow call)

The schedule (a Prefect deployment that checks every new inbox batch once) is pipelines/drift_flow.py.
"""
