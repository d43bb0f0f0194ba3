"""InferPrep's reference inference engine: a plain library that never imports Django."""
