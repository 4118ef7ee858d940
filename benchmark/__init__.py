"""Train and evaluate audio-deepfake detectors under the papers' protocols."""
