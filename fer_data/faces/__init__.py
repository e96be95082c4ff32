"""Face work on one image: detection, 68-point landmarks, eye-based alignment, quality."""
