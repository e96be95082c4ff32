"""Label review (README.md, "Label review"): find likely mislabelled and ambiguous faces, show them to
stewards, and feed their decisions back into the corpus."""
