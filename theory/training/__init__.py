"""Training loops. They take tensors and configs and return results; a caller that wants checkpoints
passes a resume state and a checkpoint callback (theory writes no files).

schedule    the one learning-rate schedule (linear warm-up, cosine decay to a final fraction)
dsm         denoising-score-matching training of a ScoreNet ensemble
regression  regression of a ReLU net onto a known score at a fixed t
image       denoising training of an image noise predictor (the DiT)
"""
